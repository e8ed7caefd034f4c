using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;
using TrainingService.Compute.Training;

namespace TrainingService.Compute.Tests.Training;

/// <summary>Small synthetic problems and a recording observer.</summary>
internal static class TrainingFixtures
{
    public sealed class Recorder : ITrainingObserver
    {
        public List<EpochRecord> Epochs { get; } = [];
        public List<TrainingCheckpoint> Checkpoints { get; } = [];

        public ValueTask OnEpochAsync(EpochRecord record, TrainingCheckpoint? checkpoint)
        {
            Epochs.Add(record);
            if (checkpoint is not null)
            {
                Checkpoints.Add(checkpoint);
            }
            return ValueTask.CompletedTask;
        }
    }

    public static async Task<(TrainingOutcome Outcome, Recorder Recorder)> TrainAsync(TrainerSpec spec, TrainingSet train,
        TrainingSet? validation = null, TrainingCheckpoint? resume = null, CancellationToken cancellationToken = default)
    {
        using var trainer = new Trainer(TestDevice.Instance, spec, train, validation);
        var recorder = new Recorder();
        var outcome = await trainer.RunAsync(recorder, resume, cancellationToken);
        return (outcome, recorder);
    }

    public static CombinedLoss Loss(string name, TargetLayout layout, int classes, Dictionary<string, object?>? parameters = null) =>
        CombinedLoss.Bind([new LossTermSpec(name, parameters)], new LossBinding(layout, classes, OnLogits: true));

    /// <summary>y = 3·x1 − 2·x2 + 0.5 with x uniform in [−1, 1].</summary>
    public static TrainingSet LinearProblem(int rows, int seed = 1)
    {
        var random = new Random(seed);
        var x = new float[rows * 2];
        var y = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            float x1 = (float)(random.NextDouble() * 2 - 1), x2 = (float)(random.NextDouble() * 2 - 1);
            x[2 * r] = x1;
            x[2 * r + 1] = x2;
            y[r] = 3 * x1 - 2 * x2 + 0.5f;
        }
        return new TrainingSet(x, y, rows, 2, 1);
    }

    /// <summary>Three Gaussian blobs in 2-D with class indices 0, 1, 2.</summary>
    public static TrainingSet Blobs(int rows, int seed)
    {
        var random = new Random(seed);
        (double X, double Y)[] centres = [(0, 3), (-3, -2), (3, -2)];
        var x = new float[rows * 2];
        var y = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            int c = r % 3;
            x[2 * r] = (float)(centres[c].X + Gaussian(random));
            x[2 * r + 1] = (float)(centres[c].Y + Gaussian(random));
            y[r] = c;
        }
        return new TrainingSet(x, y, rows, 2, 1);
    }

    public static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    public static TrainerSpec Spec(NetworkLayout network, CombinedLoss loss, OptimizerSpec optimizer, int epochs, int batchSize,
        OutputKind kind, OutputTransform transform, int seed = 7) =>
        new(network, loss, optimizer, epochs, batchSize, seed, kind, transform);
}
