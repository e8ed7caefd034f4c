// The reference workload of the training-engine issue in TensorFlow.js (WebAssembly backend), as the baseline of
// `TrainingService.Bench train`: 100,000 rows × 64 features, MLP 64→128→10 (ReLU), softmax cross-entropy,
// Adam (lr 1e-3), batch 256, shuffled every epoch. Prints one JSON line per epoch for the bench to read.
const tf = require('@tensorflow/tfjs');
require('@tensorflow/tfjs-backend-wasm');

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

(async () => {
  const rows = arg('--rows', 100000), epochs = arg('--epochs', 3), features = 64, classes = 10;
  await tf.setBackend('wasm');
  await tf.ready();
  const xs = tf.randomUniform([rows, features], -1, 1, 'float32', 42);
  const ys = tf.oneHot(tf.randomUniform([rows], 0, classes, 'int32', 43), classes);
  const model = tf.sequential();
  model.add(tf.layers.dense({ inputShape: [features], units: 128, activation: 'relu' }));
  model.add(tf.layers.dense({ units: classes }));
  model.compile({ optimizer: tf.train.adam(1e-3), loss: (t, p) => tf.losses.softmaxCrossEntropy(t, p) });
  console.log(JSON.stringify({
    backend: tf.getBackend(),
    simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'),
    threads: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT'),
  }));
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const started = process.hrtime.bigint();
    const history = await model.fit(xs, ys, { epochs: 1, batchSize: 256, shuffle: true, verbose: 0 });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    console.log(JSON.stringify({ epoch, ms, samplesPerSecond: rows / ms * 1000, loss: history.history.loss[0] }));
  }
})();
