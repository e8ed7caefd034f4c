using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;
using TrainingService.Compute.Schedules;
using TrainingService.Compute.Training;
using static TrainingService.Compute.Tests.Training.TrainingFixtures;

namespace TrainingService.Compute.Tests.Training;

public sealed class TrainingLoopTests
{
    private static TrainerSpec BlobSpec(int epochs, int seed = 7, double dropout = 0.2) =>
        Spec(new NetworkLayout(2, [16, 8], 3, Activation.Relu, dropout), Loss("cross_entropy", TargetLayout.ClassIndex, 3),
            new OptimizerSpec(OptimizerKind.Adam, 0.01), epochs, 32, OutputKind.Multiclass, OutputTransform.Softmax, seed);

    private static object[] Comparable(EpochRecord r) =>
        [r.Epoch, r.TrainLoss, r.ValLoss ?? double.NaN, r.RegularizationLoss, r.LearningRate, r.GradientNorm,
            string.Join(",", r.Metrics.OrderBy(m => m.Key).Select(m => $"{m.Key}={m.Value:R}"))];

    [Fact]
    public void Early_stopping_stops_at_the_right_epoch_on_a_scripted_curve()
    {
        var state = new EarlyStoppingState(new EarlyStoppingSpec("valLoss", Patience: 2, MinDelta: 0.005));
        double[] curve = [1.0, 0.8, 0.7, 0.698, 0.72, 0.69, 0.70];
        int stoppedAt = 0;
        for (int epoch = 1; epoch <= curve.Length; epoch++)
        {
            if (state.Update(epoch, curve[epoch - 1], [epoch]))
            {
                stoppedAt = epoch;
                break;
            }
        }

        // 0.698 is not better than 0.7 by more than 0.005; 0.72 is worse: two epochs without improvement after epoch 3.
        Assert.Equal(5, stoppedAt);
        Assert.Equal(3, state.BestEpoch);
        Assert.Equal([3f], state.FinalParameters([5]));
    }

    [Fact]
    public void Early_stopping_in_max_mode_tracks_the_highest_value()
    {
        var state = new EarlyStoppingState(new EarlyStoppingSpec("accuracy", Patience: 1));
        Assert.False(state.Update(1, 0.5, [1]));
        Assert.False(state.Update(2, 0.9, [2]));
        Assert.True(state.Update(3, 0.8, [3]));
        Assert.Equal(2, state.BestEpoch);
    }

    [Fact]
    public async Task A_run_with_early_stopping_restores_the_best_epochs_weights()
    {
        var spec = BlobSpec(60) with { EarlyStopping = new EarlyStoppingSpec("valLoss", Patience: 3, MinDelta: 1e-3) };

        var (outcome, recorder) = await TrainAsync(spec, Blobs(300, 1), Blobs(150, 2));

        Assert.Equal(StopReason.EarlyStopped, outcome.StopReason);
        int best = outcome.BestEpoch!.Value;
        double bestLoss = recorder.Epochs[best - 1].ValLoss!.Value;
        Assert.Equal(best + 3, recorder.Epochs.Count);
        Assert.All(recorder.Epochs.Skip(best), e => Assert.True(e.ValLoss > bestLoss - 1e-3, "a later epoch improved by more than minDelta"));
        Assert.Equal(recorder.Checkpoints.Single(c => c.Epoch == best).Parameters, outcome.Parameters);
    }

    [Fact]
    public async Task A_divergent_learning_rate_ends_diverged()
    {
        var network = new NetworkLayout(2, [], 1, Activation.Identity);
        var spec = Spec(network, Loss("mse", TargetLayout.Elementwise, 1), new OptimizerSpec(OptimizerKind.Sgd, 50), 30, 16,
            OutputKind.Regression, OutputTransform.Identity);

        var (outcome, recorder) = await TrainAsync(spec, LinearProblem(200));

        Assert.Equal(StopReason.Diverged, outcome.StopReason);
        Assert.True(outcome.EpochsCompleted < 30);
        Assert.False(double.IsFinite(recorder.Epochs[^1].TrainLoss) && double.IsFinite(recorder.Epochs[^1].GradientNorm));
    }

    [Fact]
    public async Task Two_runs_with_the_same_seed_give_bit_identical_histories()
    {
        var first = await TrainAsync(BlobSpec(5), Blobs(300, 1), Blobs(90, 2));
        var second = await TrainAsync(BlobSpec(5), Blobs(300, 1), Blobs(90, 2));

        Assert.Equal(first.Recorder.Epochs.Select(Comparable), second.Recorder.Epochs.Select(Comparable));
        Assert.Equal(first.Outcome.Parameters, second.Outcome.Parameters);
    }

    [Fact]
    public async Task A_different_seed_gives_a_different_history()
    {
        var first = await TrainAsync(BlobSpec(2, seed: 1), Blobs(300, 1));
        var second = await TrainAsync(BlobSpec(2, seed: 2), Blobs(300, 1));

        Assert.NotEqual(first.Recorder.Epochs[0].TrainLoss, second.Recorder.Epochs[0].TrainLoss);
    }

    [Fact]
    public async Task A_run_resumed_from_a_checkpoint_equals_an_uninterrupted_run()
    {
        var spec = BlobSpec(6) with
        {
            CheckpointEvery = 2,
            Schedule = new ScheduleSpec(ScheduleKind.ReduceOnPlateau, Patience: 0, Factor: 0.5),
            EarlyStopping = new EarlyStoppingSpec("valLoss", Patience: 50),
        };
        var uninterrupted = await TrainAsync(spec, Blobs(300, 1), Blobs(90, 2));
        var checkpoint = TrainingCheckpoint.Deserialize(uninterrupted.Recorder.Checkpoints.Single(c => c.Epoch == 4).Serialize());

        var resumed = await TrainAsync(spec, Blobs(300, 1), Blobs(90, 2), resume: checkpoint);

        Assert.Equal([5, 6], resumed.Recorder.Epochs.Select(e => e.Epoch));
        Assert.Equal(uninterrupted.Recorder.Epochs.Skip(4).Select(Comparable), resumed.Recorder.Epochs.Select(Comparable));
        Assert.Equal(uninterrupted.Outcome.Parameters, resumed.Outcome.Parameters);
    }

    [Fact]
    public async Task Cancellation_stops_at_a_batch_boundary_and_keeps_the_epochs_done()
    {
        using var cancellation = new CancellationTokenSource();
        var spec = BlobSpec(50);
        using var trainer = new Trainer(TestDevice.Instance, spec, Blobs(300, 1), null);
        var observer = new CancelAfter(2, cancellation);

        var outcome = await trainer.RunAsync(observer, null, cancellation.Token);

        Assert.Equal(StopReason.Cancelled, outcome.StopReason);
        Assert.Equal(2, outcome.EpochsCompleted);
        Assert.Equal(2, observer.Epochs);
    }

    [Fact]
    public async Task L2_regularization_is_reported_and_included_in_the_losses()
    {
        var spec = BlobSpec(2) with { Regularization = new Regularization(0, 0.01) };

        var (_, recorder) = await TrainAsync(spec, Blobs(300, 1), Blobs(90, 2));

        Assert.All(recorder.Epochs, e => Assert.True(e.RegularizationLoss > 0));
        Assert.All(recorder.Epochs, e => Assert.True(e.TrainLoss > e.RegularizationLoss));

        // A step too small to move any weight (1e-30 against weights of order 0.1) keeps both runs on the same parameters,
        // so their data losses are the same and the losses with L2 exceed those without by exactly the reported penalty.
        var still = spec with { Optimizer = new OptimizerSpec(OptimizerKind.Sgd, 1e-30) };
        var (_, penalised) = await TrainAsync(still, Blobs(300, 1), Blobs(90, 2));
        var (_, plain) = await TrainAsync(still with { Regularization = Regularization.None }, Blobs(300, 1), Blobs(90, 2));
        Assert.Equal(2, penalised.Epochs.Count);
        for (int i = 0; i < penalised.Epochs.Count; i++)
        {
            EpochRecord l2 = penalised.Epochs[i], none = plain.Epochs[i];
            Assert.Equal(0, none.RegularizationLoss);
            Assert.True(l2.RegularizationLoss > 1e-4, $"penalty {l2.RegularizationLoss}");
            Assert.Equal(l2.RegularizationLoss, l2.TrainLoss - none.TrainLoss, 1e-9);
            // valLoss adds the penalty taken on the host in double; the reported one sums the device's float squares.
            Assert.Equal(l2.RegularizationLoss, l2.ValLoss!.Value - none.ValLoss!.Value, 1e-6 * l2.RegularizationLoss);
        }
    }

    private sealed class CancelAfter(int epochs, CancellationTokenSource source) : ITrainingObserver
    {
        public int Epochs { get; private set; }

        public ValueTask OnEpochAsync(EpochRecord record, TrainingCheckpoint? checkpoint)
        {
            if (++Epochs == epochs)
            {
                source.Cancel();
            }
            return ValueTask.CompletedTask;
        }
    }
}
