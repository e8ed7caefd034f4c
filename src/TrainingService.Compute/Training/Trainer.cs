using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;
using TrainingService.Compute.Devices;
using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;
using TrainingService.Compute.Schedules;

namespace TrainingService.Compute.Training;

/// <summary>
/// The epoch loop. Each batch is a fixed sequence of kernel launches: forward per layer, the loss (one launch per
/// term) writing ∂L/∂logits, backward per layer, gradient preparation (penalty, norm), optimizer step. Per-batch
/// sums go to per-group slots of an epoch-wide buffer that is read once per epoch, so nothing waits on the device
/// between batches and every sum is taken in a fixed order (bit-identical reruns on the CPU accelerator).
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly ComputeDevice _device;
    private readonly TrainerSpec _spec;
    private readonly TrainingSet _train;
    private readonly TrainingSet? _validation;
    private readonly NetworkLayout _layout;
    private readonly List<IDisposable> _buffers = [];
    private readonly int _slotsPerBatch;
    private readonly int _batches;

    private readonly MemoryBuffer1D<float, Stride1D.Dense> _trainX, _trainY, _shuffledX, _shuffledY;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>? _trainWeights, _shuffledWeights;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _permutation;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _parameters, _gradients, _mask;
    private readonly float[] _hostMask;
    private readonly MemoryBuffer1D<double, Stride1D.Dense> _epochPartials, _evalPartials;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>?[] _termClassWeights;
    private readonly EvaluationSet? _validationSet;
    private readonly NetworkExecutor _executor;
    private readonly Optimizer _optimizer;

    /// <summary>Uploads the data and allocates every buffer the run needs.</summary>
    public Trainer(ComputeDevice device, TrainerSpec spec, TrainingSet train, TrainingSet? validation)
    {
        _device = device;
        _spec = spec;
        _train = train;
        _validation = validation;
        _layout = spec.Network;
        _batches = (int)(((long)train.Rows + spec.BatchSize - 1) / spec.BatchSize);
        int terms = spec.Loss.Terms.Count;
        _slotsPerBatch = terms + 2;

        // The device is shared (predictions, other jobs): allocate and upload under its gate, and free what was
        // allocated if something fails half way.
        using var gate = device.Acquire();
        try
        {
            _trainX = Track(device.Accelerator.Allocate1D(train.Features));
            _trainY = Track(device.Accelerator.Allocate1D(train.Targets));
            _shuffledX = Track(device.Accelerator.Allocate1D<float>(train.Features.Length));
            _shuffledY = Track(device.Accelerator.Allocate1D<float>(train.Targets.Length));
            var weights = ElementWeights(train.Targets);
            if (weights is not null)
            {
                _trainWeights = Track(device.Accelerator.Allocate1D(weights));
                _shuffledWeights = Track(device.Accelerator.Allocate1D<float>(weights.Length));
            }
            _permutation = Track(device.Accelerator.Allocate1D<int>(train.Rows));
            _parameters = Track(device.Accelerator.Allocate1D<float>(_layout.ParameterCount));
            _gradients = Track(device.AllocateZeroed<float>(_layout.ParameterCount));
            _hostMask = _layout.RegularizationMask(spec.Regularization.IncludeBias);
            _mask = Track(device.Accelerator.Allocate1D(_hostMask));
            _epochPartials = Track(device.AllocateZeroed<double>((long)_batches * _slotsPerBatch * device.MaxGroups));
            _termClassWeights = spec.Loss.Terms
                .Select(t => t.IsRowLoss && t.ClassWeights is not null
                    ? Track(device.Accelerator.Allocate1D(Array.ConvertAll(t.ClassWeights, w => (float)w)))
                    : null)
                .ToArray();
            int evaluationRows = Math.Max(validation?.Rows ?? 0, train.Rows); // the baseline evaluates both splits
            int chunks = Math.Max(1, (evaluationRows + spec.EvaluationChunk - 1) / spec.EvaluationChunk);
            _evalPartials = Track(device.AllocateZeroed<double>((long)chunks * terms * device.MaxGroups));
            if (validation is not null)
            {
                _validationSet = Track(new EvaluationSet(device, validation, ElementWeights(validation.Targets)));
            }
            _executor = Track(new NetworkExecutor(device, _layout, Math.Max(Math.Min(spec.BatchSize, train.Rows), spec.EvaluationChunk)));
            _optimizer = Track(new Optimizer(device, spec.Optimizer, _layout.ParameterCount));
        }
        catch
        {
            DisposeBuffers();
            throw;
        }
    }

    /// <summary>
    /// Trains from the start, or from <paramref name="resume"/>, reporting each epoch to <paramref name="observer"/>.
    /// Cancellation is honoured at the next batch boundary and ends the run with <see cref="StopReason.Cancelled"/>.
    /// </summary>
    public async Task<TrainingOutcome> RunAsync(ITrainingObserver observer, TrainingCheckpoint? resume, CancellationToken cancellationToken)
    {
        var schedule = new LearningRateSchedule(_spec.Schedule, _spec.Optimizer.LearningRate, _spec.Epochs);
        var stopping = new EarlyStoppingState(_spec.EarlyStopping, _spec.EarlyStopping is null ? _spec.Keep : null);
        float[] parameters = await StartAsync(resume, schedule, stopping).ConfigureAwait(false);
        int firstEpoch = resume is null ? 1 : resume.Epoch + 1;
        string plateauMonitor = _spec.Schedule.Monitor ?? (_validation is null ? "trainLoss" : "valLoss");
        var plateauMode = _spec.Schedule.Mode ?? EarlyStoppingSpec.ModeFor(plateauMonitor);

        for (int epoch = firstEpoch; epoch <= _spec.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            double learningRate = schedule.Current;
            var pass = await TrainEpochAsync(epoch, learningRate, cancellationToken).ConfigureAwait(false);
            if (pass is null)
            {
                return Outcome(StopReason.Cancelled, epoch - 1, parameters, stopping);
            }
            double trainSeconds = clock.Elapsed.TotalSeconds;
            (parameters, double? valLoss, var metrics) = await MeasureAsync().ConfigureAwait(false);

            var record = new EpochRecord(epoch, pass.Value.DataLoss + pass.Value.Penalty, valLoss, pass.Value.Penalty, metrics,
                learningRate, pass.Value.GradientNorm, clock.Elapsed.TotalMilliseconds, _train.Rows / trainSeconds);
            bool diverged = !double.IsFinite(record.TrainLoss) || !double.IsFinite(record.GradientNorm) || valLoss is double v && !double.IsFinite(v);
            bool stop = !diverged && stopping.Update(epoch, Monitored(stopping.Monitor, record), parameters);
            schedule.Advance(epoch, Monitored(plateauMonitor, record), plateauMode);

            bool checkpointDue = !diverged && !stop && epoch < _spec.Epochs && epoch % _spec.CheckpointEvery == 0;
            var checkpoint = checkpointDue ? await CheckpointAsync(epoch, parameters, schedule, stopping).ConfigureAwait(false) : null;
            await observer.OnEpochAsync(record, checkpoint).ConfigureAwait(false);

            if (diverged)
            {
                return Outcome(StopReason.Diverged, epoch, parameters, stopping, keepBest: false);
            }
            if (stop)
            {
                return Outcome(StopReason.EarlyStopped, epoch, parameters, stopping);
            }
        }
        return Outcome(StopReason.Completed, _spec.Epochs, parameters, stopping);
    }

    /// <summary>
    /// The starting parameters (fresh from the seed, or the checkpoint's) on the device, with the optimizer, schedule and
    /// early-stopping state restored from <paramref name="resume"/> when given.
    /// </summary>
    private async Task<float[]> StartAsync(TrainingCheckpoint? resume, LearningRateSchedule schedule, EarlyStoppingState stopping)
    {
        float[] parameters;
        if (resume is null)
        {
            parameters = _layout.Initialize(_spec.Seed);
        }
        else
        {
            if (resume.Seed != _spec.Seed || resume.Parameters.Length != _layout.ParameterCount)
            {
                throw new InvalidOperationException("The checkpoint belongs to a different run (seed or model size differ).");
            }
            parameters = resume.Parameters;
            schedule.Restore(resume.LearningRate, resume.PlateauBest, resume.PlateauBadEpochs);
            stopping.Restore(resume);
        }
        using (await _device.AcquireAsync(CancellationToken.None).ConfigureAwait(false))
        {
            if (resume is not null)
            {
                _optimizer.RestoreState(resume.OptimizerState, resume.Steps);
            }
            _parameters.CopyFromCPU(parameters);
        }
        return parameters;
    }

    /// <summary>
    /// After an epoch: the parameters read back, the validation loss (data loss plus the penalty of those parameters) and
    /// the metrics, on the validation set, else on the training set when asked for, else none.
    /// </summary>
    private async Task<(float[] Parameters, double? ValLoss, Dictionary<string, double> Metrics)> MeasureAsync()
    {
        using (await _device.AcquireAsync(CancellationToken.None).ConfigureAwait(false))
        {
            var parameters = _parameters.GetAsArray1D();
            if (_validationSet is not null)
            {
                double penalty = Penalty(parameters);
                var (loss, outputs) = Evaluate(_validationSet);
                return (parameters, loss + penalty, Metrics.Compute(_spec.OutputKind, _spec.OutputTransform, outputs, _validation!.Targets,
                    _validation.Rows, _layout.Outputs));
            }
            if (!_spec.TrainingSetMetrics)
            {
                return (parameters, null, []);
            }
            using var trainSet = new EvaluationSet(_train, _trainX, _trainY, _trainWeights);
            var (_, trainOutputs) = Evaluate(trainSet);
            return (parameters, null, Metrics.Compute(_spec.OutputKind, _spec.OutputTransform, trainOutputs, _train.Targets, _train.Rows,
                _layout.Outputs));
        }
    }

    /// <summary>The run's result: the kept model (the best epoch's when tracked, else <paramref name="last"/>) and its epoch.</summary>
    private static TrainingOutcome Outcome(StopReason reason, int epochs, float[] last, EarlyStoppingState stopping, bool keepBest = true) =>
        new(reason, epochs, keepBest ? stopping.FinalParameters(last) : last, stopping.BestEpochOrNull, stopping.BestValueOrNull,
            keepBest ? stopping.FinalEpoch(epochs) : epochs);

    /// <inheritdoc />
    public void Dispose()
    {
        using var gate = _device.Acquire();
        DisposeBuffers();
    }

    private void DisposeBuffers()
    {
        for (int i = _buffers.Count - 1; i >= 0; i--)
        {
            _buffers[i].Dispose();
        }
        _buffers.Clear();
    }

    private readonly record struct EpochSums(double DataLoss, double Penalty, double GradientNorm);

    /// <summary>One pass over the shuffled training rows; null when cancelled.</summary>
    private async Task<EpochSums?> TrainEpochAsync(int epoch, double learningRate, CancellationToken cancellationToken)
    {
        int[] permutation = Permutation(_spec.Seed, epoch, _train.Rows);
        float[] shuffledTargets = ShuffleHost(_train.Targets, permutation, _train.TargetWidth);
        var divisors = new double[_batches * _spec.Loss.Terms.Count];
        var gather = _device.Load<ArrayView<float>, ArrayView<float>, ArrayView<int>, int>(DenseKernels.GatherRows);

        if (cancellationToken.IsCancellationRequested)
        {
            return null;
        }
        using (await _device.AcquireAsync(CancellationToken.None).ConfigureAwait(false))
        {
            _permutation.CopyFromCPU(permutation);
            gather(_device.GridStride(_train.Features.Length), _trainX.View, _shuffledX.View, _permutation.View, _train.FeatureCount);
            gather(_device.GridStride(_train.Targets.Length), _trainY.View, _shuffledY.View, _permutation.View, _train.TargetWidth);
            if (_trainWeights is not null)
            {
                gather(_device.GridStride(_train.Rows), _trainWeights.View, _shuffledWeights!.View, _permutation.View, 1);
            }
            _epochPartials.MemSetToZero();
        }

        for (int batch = 0; batch < _batches; batch++)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return null;
            }
            using var _ = await _device.AcquireAsync(CancellationToken.None).ConfigureAwait(false);
            LaunchBatch(epoch, batch, learningRate, shuffledTargets, divisors);
        }

        double[] partials;
        using (await _device.AcquireAsync(CancellationToken.None).ConfigureAwait(false))
        {
            _device.Accelerator.Synchronize();
            partials = _epochPartials.GetAsArray1D();
        }
        return Summarise(partials, divisors);
    }

    /// <summary>
    /// One batch's launches, under the device gate: forward, one loss launch per term (recording each term's mean divisor
    /// in <paramref name="divisors"/>), backward, optimizer step. Its sums land in the batch's slots of the epoch buffer.
    /// </summary>
    private void LaunchBatch(int epoch, int batch, double learningRate, float[] shuffledTargets, double[] divisors)
    {
        int start = batch * _spec.BatchSize;
        int rows = Math.Min(_spec.BatchSize, _train.Rows - start);
        int slot = batch * _slotsPerBatch * _device.MaxGroups;
        var x = _shuffledX.View.SubView((long)start * _train.FeatureCount, (long)rows * _train.FeatureCount);
        var y = _shuffledY.View.SubView((long)start * _train.TargetWidth, (long)rows * _train.TargetWidth);
        ArrayView<float> w = _shuffledWeights is null ? ArrayView<float>.Empty : _shuffledWeights.View.SubView(start, rows);
        uint dropoutSeed = Mix(_spec.Seed, epoch, batch);
        var logits = _executor.Forward(x, rows, _parameters.View, dropoutSeed);
        var sample = new LossSample(default, shuffledTargets.AsSpan(start * _train.TargetWidth, rows * _train.TargetWidth), rows, _layout.Outputs);
        for (int t = 0; t < _spec.Loss.Terms.Count; t++)
        {
            var term = _spec.Loss.Terms[t];
            double divisor = term.MeanDivisor(sample);
            divisors[batch * _spec.Loss.Terms.Count + t] = divisor;
            LaunchTerm(t, logits, y, w, _executor.OutputGradient(rows), _epochPartials.View, slot + t * _device.MaxGroups,
                Scale(term.Weight, divisor), rows);
        }
        _executor.Backward(x, rows, _parameters.View, _gradients.View, dropoutSeed);
        int penaltySlot = slot + _spec.Loss.Terms.Count * _device.MaxGroups;
        _optimizer.Step(_parameters.View, _gradients.View, _mask.View, _epochPartials.View, penaltySlot, _spec.Regularization, learningRate);
    }

    private EpochSums Summarise(double[] partials, double[] divisors)
    {
        int terms = _spec.Loss.Terms.Count, groups = _device.MaxGroups;
        double loss = 0, penalty = 0, norms = 0;
        for (int batch = 0; batch < _batches; batch++)
        {
            int rows = Math.Min(_spec.BatchSize, _train.Rows - batch * _spec.BatchSize);
            int slot = batch * _slotsPerBatch * groups;
            double batchLoss = 0;
            for (int t = 0; t < terms; t++)
            {
                batchLoss += Scale(_spec.Loss.Terms[t].Weight, divisors[batch * terms + t]) * Sum(partials, slot + t * groups, groups);
            }
            loss += batchLoss * rows;
            penalty += Sum(partials, slot + terms * groups, groups) * rows;
            norms += Math.Sqrt(Sum(partials, slot + (terms + 1) * groups, groups));
        }
        return new EpochSums(loss / _train.Rows, penalty / _train.Rows, norms / _batches);
    }

    /// <summary>
    /// The trivial model's data loss on both splits and its metrics (see <see cref="Baseline"/>), computed with the same loss
    /// kernels as the epochs' losses. Call before or after <see cref="RunAsync"/>; it leaves the model untouched.
    /// </summary>
    public async Task<Baseline> BaselineAsync()
    {
        var row = Baselines.ConstantOutputs(_spec.OutputKind, _spec.OutputTransform, _train.Targets, _train.Rows, _layout.Outputs);
        int rows = Math.Min(_spec.EvaluationChunk, Math.Max(_train.Rows, _validation?.Rows ?? 0));
        var constant = new float[(long)rows * row.Length];
        for (int i = 0; i < constant.Length; i++)
        {
            constant[i] = (float)row[i % row.Length];
        }
        using (await _device.AcquireAsync(CancellationToken.None).ConfigureAwait(false))
        {
            using var logits = _device.Accelerator.Allocate1D(constant);
            using var trainSet = new EvaluationSet(_train, _trainX, _trainY, _trainWeights);
            var (trainLoss, trainOutputs) = Evaluate(trainSet, logits);
            var (valLoss, valOutputs) = _validationSet is null ? (double.NaN, null) : Evaluate(_validationSet, logits);
            var measured = _validation ?? _train;
            var metrics = Metrics.Compute(_spec.OutputKind, _spec.OutputTransform, valOutputs ?? trainOutputs, measured.Targets, measured.Rows,
                _layout.Outputs);
            return new Baseline(Baselines.ModelName(_spec.OutputKind), row, trainLoss, _validationSet is null ? null : valLoss, metrics);
        }
    }

    /// <summary>
    /// The configured loss over a whole set (one denominator for the set) and its raw outputs: the network's, or, given
    /// <paramref name="constantLogits"/>, those rows of a constant output (<see cref="BaselineAsync"/>).
    /// </summary>
    private (double Loss, float[] Outputs) Evaluate(EvaluationSet set, MemoryBuffer1D<float, Stride1D.Dense>? constantLogits = null)
    {
        var data = set.Data;
        int terms = _spec.Loss.Terms.Count, chunk = _spec.EvaluationChunk;
        var outputs = new float[(long)data.Rows * _layout.Outputs];
        _evalPartials.MemSetToZero();
        for (int start = 0, index = 0; start < data.Rows; start += chunk, index++)
        {
            int rows = Math.Min(chunk, data.Rows - start);
            var x = set.Features.View.SubView((long)start * data.FeatureCount, (long)rows * data.FeatureCount);
            var y = set.Targets.View.SubView((long)start * data.TargetWidth, (long)rows * data.TargetWidth);
            ArrayView<float> w = set.Weights is null ? ArrayView<float>.Empty : set.Weights.View.SubView(start, rows);
            ArrayView<float> logits = constantLogits is null
                ? _executor.Forward(x, rows, _parameters.View, dropoutSeed: null)
                : constantLogits.View.AsContiguous().SubView(0, (long)rows * _layout.Outputs);
            for (int t = 0; t < terms; t++)
            {
                LaunchTerm(t, logits, y, w, ArrayView<float>.Empty, _evalPartials.View, (index * terms + t) * _device.MaxGroups, 0, rows);
            }
            logits.CopyToCPU(outputs.AsSpan(start * _layout.Outputs, rows * _layout.Outputs));
        }
        var partials = _evalPartials.GetAsArray1D();
        var sample = new LossSample(default, data.Targets, data.Rows, _layout.Outputs);
        int chunks = (data.Rows + chunk - 1) / chunk;
        double total = 0;
        for (int t = 0; t < terms; t++)
        {
            double sum = 0;
            for (int index = 0; index < chunks; index++)
            {
                sum += Sum(partials, (index * terms + t) * _device.MaxGroups, _device.MaxGroups);
            }
            total += Scale(_spec.Loss.Terms[t].Weight, _spec.Loss.Terms[t].MeanDivisor(sample)) * sum;
        }
        return (total, outputs);
    }

    private void LaunchTerm(int t, ArrayView<float> logits, ArrayView<float> targets, ArrayView<float> weights,
        ArrayView<float> gradient, ArrayView<double> partials, int partialOffset, double scale, int rows)
    {
        var views = new LossViews
        {
            Predictions = logits,
            Targets = targets,
            Weights = weights,
            Aux = ArrayView<float>.Empty,
            ClassWeights = _termClassWeights[t].ViewOrEmpty(),
            Gradient = gradient,
            PerItem = ArrayView<float>.Empty,
            Partials = partials,
        };
        var args = new LossLaunchArgs { Scale = scale, Accumulate = t == 0 ? 0 : 1, PartialOffset = partialOffset, Classes = _layout.Outputs };
        _spec.Loss.Terms[t].Launch(_device, views, args, rows);
    }

    private double Penalty(float[] parameters)
    {
        if (!_spec.Regularization.IsActive)
        {
            return 0;
        }
        var masked = parameters.Where((_, i) => _hostMask[i] != 0).ToArray();
        return _spec.Regularization.Penalty(masked);
    }

    private async Task<TrainingCheckpoint> CheckpointAsync(int epoch, float[] parameters, LearningRateSchedule schedule,
        EarlyStoppingState stopping)
    {
        using (await _device.AcquireAsync(CancellationToken.None).ConfigureAwait(false))
        {
            return Checkpoint(epoch, parameters, schedule, stopping);
        }
    }

    private TrainingCheckpoint Checkpoint(int epoch, float[] parameters, LearningRateSchedule schedule, EarlyStoppingState stopping) => new()
    {
        Epoch = epoch,
        Seed = _spec.Seed,
        Steps = _optimizer.Steps,
        Parameters = parameters,
        OptimizerState = _optimizer.SaveState(),
        LearningRate = schedule.Current,
        PlateauBest = schedule.PlateauBest,
        PlateauBadEpochs = schedule.PlateauBadEpochs,
        BestValue = stopping.Best,
        BestEpoch = stopping.BestEpoch,
        Wait = stopping.Wait,
        BestParameters = stopping.BestParameters,
    };

    private float[]? ElementWeights(float[] targets) =>
        _spec.Loss.Terms.Select(t => t.ElementWeights(targets)).FirstOrDefault(w => w is not null);

    /// <summary>
    /// weight / divisor, except that a batch whose mean divisor is 0 (every row's class weighted 0) contributes nothing,
    /// where PyTorch's mean would be 0/0 and stop the run as diverged.
    /// </summary>
    private static double Scale(double weight, double divisor) => divisor == 0 ? 0 : weight / divisor;

    private static double Monitored(string? monitor, EpochRecord record) => monitor switch
    {
        null => double.NaN,
        "valLoss" => record.ValLoss ?? double.NaN,
        "trainLoss" => record.TrainLoss,
        _ => record.Metrics.TryGetValue(monitor, out var value) ? value : double.NaN,
    };

    private static double Sum(double[] values, int offset, int count)
    {
        double sum = 0;
        for (int i = 0; i < count; i++)
        {
            sum += values[offset + i];
        }
        return sum;
    }

    /// <summary>The epoch's row order: a Fisher–Yates shuffle seeded by (seed, epoch) alone, so a resumed run repeats it.</summary>
    internal static int[] Permutation(int seed, int epoch, int rows)
    {
        var random = new Random((int)(Mix(seed, epoch, -1) & 0x7FFFFFFF));
        var order = new int[rows];
        for (int i = 0; i < rows; i++)
        {
            order[i] = i;
        }
        for (int i = rows - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>SplitMix64 of (seed, epoch, batch): independent streams for shuffles and dropout masks.</summary>
    internal static uint Mix(int seed, int epoch, int batch)
    {
        ulong z = (ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ (ulong)(uint)epoch << 32 ^ (uint)batch;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (uint)(z ^ (z >> 31));
    }

    private static float[] ShuffleHost(float[] values, int[] permutation, int width)
    {
        var shuffled = new float[values.Length];
        for (int i = 0; i < permutation.Length; i++)
        {
            Array.Copy(values, permutation[i] * width, shuffled, i * width, width);
        }
        return shuffled;
    }

    private T Track<T>(T disposable) where T : IDisposable
    {
        _buffers.Add(disposable);
        return disposable;
    }

    /// <summary>A data set on the device for evaluation; borrows buffers when given, otherwise owns uploaded copies.</summary>
    private sealed class EvaluationSet : IDisposable
    {
        private readonly bool _owned;

        public EvaluationSet(ComputeDevice device, TrainingSet data, float[]? weights)
        {
            Data = data;
            Features = device.Accelerator.Allocate1D(data.Features);
            Targets = device.Accelerator.Allocate1D(data.Targets);
            Weights = device.Upload(weights);
            _owned = true;
        }

        public EvaluationSet(TrainingSet data, MemoryBuffer1D<float, Stride1D.Dense> features, MemoryBuffer1D<float, Stride1D.Dense> targets,
            MemoryBuffer1D<float, Stride1D.Dense>? weights)
        {
            Data = data;
            Features = features;
            Targets = targets;
            Weights = weights;
        }

        public TrainingSet Data { get; }
        public MemoryBuffer1D<float, Stride1D.Dense> Features { get; }
        public MemoryBuffer1D<float, Stride1D.Dense> Targets { get; }
        public MemoryBuffer1D<float, Stride1D.Dense>? Weights { get; }

        public void Dispose()
        {
            if (_owned)
            {
                Features.Dispose();
                Targets.Dispose();
                Weights?.Dispose();
            }
        }
    }
}
