using TrainingService.Compute.Schedules;

namespace TrainingService.Compute.Tests.Training;

public sealed class ScheduleTests
{
    private static double[] Rates(ScheduleSpec spec, int epochs, double initial = 0.1)
    {
        var schedule = new LearningRateSchedule(spec, initial, epochs);
        var rates = new double[epochs];
        for (int e = 0; e < epochs; e++)
        {
            rates[e] = schedule.Current;
            schedule.Advance(e + 1, 0, MonitorMode.Min);
        }
        return rates;
    }

    [Fact]
    public void Constant_keeps_the_initial_rate() => Assert.All(Rates(ScheduleSpec.Constant, 5), r => Assert.Equal(0.1, r));

    [Fact]
    public void Step_decays_by_gamma_every_step_size_epochs()
    {
        var rates = Rates(new ScheduleSpec(ScheduleKind.Step, StepSize: 2, Gamma: 0.5), 6);

        Assert.Equal([0.1, 0.1, 0.05, 0.05, 0.025, 0.025], rates.Select(r => Math.Round(r, 12)));
    }

    [Fact]
    public void Exponential_decays_by_gamma_every_epoch()
    {
        var rates = Rates(new ScheduleSpec(ScheduleKind.Exponential, Gamma: 0.9), 4);

        for (int e = 0; e < 4; e++)
        {
            Assert.Equal(0.1 * Math.Pow(0.9, e), rates[e], 12);
        }
    }

    [Fact]
    public void Cosine_warms_up_linearly_then_follows_the_half_cosine()
    {
        const int epochs = 10, warmup = 2;
        var rates = Rates(new ScheduleSpec(ScheduleKind.Cosine, WarmupEpochs: warmup, MinLearningRate: 0.001), epochs);

        Assert.Equal(0.1 * 1 / 3, rates[0], 12);
        Assert.Equal(0.1 * 2 / 3, rates[1], 12);
        for (int e = warmup; e < epochs; e++)
        {
            double expected = 0.001 + (0.1 - 0.001) * 0.5 * (1 + Math.Cos(Math.PI * (e - warmup) / (epochs - warmup)));
            Assert.Equal(expected, rates[e], 12);
        }
        Assert.Equal(0.1, rates[warmup], 12);
    }

    [Fact]
    public void Reduce_on_plateau_cuts_the_rate_after_patience_epochs_without_improvement()
    {
        var schedule = new LearningRateSchedule(new ScheduleSpec(ScheduleKind.ReduceOnPlateau, Patience: 2, Factor: 0.5), 0.1, 20);
        double[] losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5];
        var rates = new List<double>();
        for (int e = 0; e < losses.Length; e++)
        {
            rates.Add(schedule.Current);
            schedule.Advance(e + 1, losses[e], MonitorMode.Min);
        }

        // Epochs 3, 4 are bad (1, 2 ≤ patience); epoch 5 is the third: the rate halves for epoch 6.
        Assert.Equal([0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05], rates);
        Assert.Equal(0.025, schedule.Current, 12);
    }
}
