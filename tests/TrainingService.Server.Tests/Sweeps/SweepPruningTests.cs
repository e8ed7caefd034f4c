using TrainingService.Server.Sweeps;

namespace TrainingService.Server.Tests.Sweeps;

/// <summary>ASHA and median stopping: when they decide, how, and what they do to a whole sweep replayed asynchronously.</summary>
public sealed class SweepPruningTests
{
    private static readonly EarlyTermination Asha = new(EarlyTerminationType.Asha, MinEpochs: 3, ReductionFactor: 3);
    private static readonly EarlyTermination Median = new(EarlyTerminationType.Median, MinEpochs: 3, MinTrials: 5);

    [Fact]
    public void Asha_rungs_are_min_epochs_times_powers_of_the_reduction_factor_below_the_last_epoch()
    {
        Assert.Equal([3, 9, 27], SweepPruning.DecisionEpochs(Asha, maxEpochs: 40));
        Assert.Equal([3, 9], SweepPruning.DecisionEpochs(Asha, maxEpochs: 27));
        Assert.Equal([2, 4, 8, 16], SweepPruning.DecisionEpochs(Asha with { MinEpochs = 2, ReductionFactor = 2 }, maxEpochs: 20));
    }

    [Fact]
    public void Median_stopping_decides_every_epoch_from_min_epochs_to_the_one_before_last()
    {
        Assert.Equal(Enumerable.Range(3, 7), SweepPruning.DecisionEpochs(Median, maxEpochs: 10));
        Assert.False(SweepPruning.IsDecisionEpoch(Median, 2, 10));
    }

    [Fact]
    public void Asha_keeps_the_top_third_of_a_rung_and_only_the_best_while_fewer_than_three_reported()
    {
        Assert.False(SweepPruning.ShouldPrune(Asha, 3, value: 5.0, bestSoFar: 5.0, peersAtEpoch: []));
        Assert.True(SweepPruning.ShouldPrune(Asha, 3, value: 5.0, bestSoFar: 5.0, peersAtEpoch: [4.0]));
        Assert.False(SweepPruning.ShouldPrune(Asha, 3, value: 3.0, bestSoFar: 3.0, peersAtEpoch: [4.0]));
        // Six values at the rung: the best two continue.
        double[] peers = [1.0, 2.0, 4.0, 5.0, 6.0];
        Assert.False(SweepPruning.ShouldPrune(Asha, 3, value: 1.5, bestSoFar: 1.5, peersAtEpoch: peers));
        Assert.True(SweepPruning.ShouldPrune(Asha, 3, value: 2.5, bestSoFar: 2.5, peersAtEpoch: peers));
        Assert.True(SweepPruning.ShouldPrune(Asha, 3, value: double.NaN, bestSoFar: 1.0, peersAtEpoch: peers));
    }

    [Fact]
    public void Median_stopping_compares_the_best_so_far_with_the_peers_median_once_enough_peers_reported()
    {
        double[] peers = [1.0, 2.0, 3.0, 4.0, 5.0];
        Assert.False(SweepPruning.ShouldPrune(Median, 3, value: 9.0, bestSoFar: 9.0, peersAtEpoch: peers[..4]));
        Assert.True(SweepPruning.ShouldPrune(Median, 3, value: 3.5, bestSoFar: 3.5, peersAtEpoch: peers));
        // A bad epoch after a good one: the trial's best so far is what counts.
        Assert.False(SweepPruning.ShouldPrune(Median, 4, value: 3.5, bestSoFar: 2.5, peersAtEpoch: peers));
        Assert.False(SweepPruning.ShouldPrune(Median, 2, value: 9.0, bestSoFar: 9.0, peersAtEpoch: peers));
    }

    [Theory]
    [InlineData(EarlyTerminationType.Asha)]
    [InlineData(EarlyTerminationType.Median)]
    public void A_sweep_replayed_asynchronously_prunes_its_bad_trials_and_never_its_best(EarlyTerminationType type)
    {
        var rule = type == EarlyTerminationType.Asha ? Asha : Median;
        var random = new Random(17);
        // 27 trials: trial 0 the best (final 0.8), 17 good ones (finals 1.0–1.5), 9 bad ones (finals 2.0–2.5).
        var finals = new List<double> { 0.8 };
        finals.AddRange(Enumerable.Range(0, 17).Select(i => 1.0 + 0.5 * i / 16));
        finals.AddRange(Enumerable.Range(0, 9).Select(i => 2.0 + 0.5 * i / 8));
        var curves = finals.Select(f => Curve(f, random)).ToList();
        // Good trials start first: a trial cannot be resumed, so the first to reach a rung or an epoch always continues
        // (see ShouldPrune), and a bad trial started first would be judged against nobody.
        var order = Enumerable.Range(0, 18).OrderBy(_ => random.Next()).Concat(Enumerable.Range(18, 9).OrderBy(_ => random.Next())).ToList();

        var outcome = Replay(rule, curves, order, random);

        Assert.All(Enumerable.Range(18, 9), bad => Assert.True(outcome[bad] < MaxEpochs, $"bad trial {bad} trained all {MaxEpochs} epochs"));
        Assert.Equal(MaxEpochs, outcome[0]);
        Assert.True(outcome.Sum() < curves.Count * MaxEpochs);
    }

    private const int MaxEpochs = 40;

    /// <summary>A decaying validation curve towards <paramref name="final"/>, with a little noise.</summary>
    private static double[] Curve(double final, Random random) =>
        Enumerable.Range(1, MaxEpochs).Select(e => final + 3.0 * Math.Exp(-e / 5.0) + 0.01 * (random.NextDouble() - 0.5)).ToArray();

    /// <summary>
    /// Runs the trials four at a time, each at its own speed (an epoch takes 0.5–1.5 time units), starting the next in
    /// <paramref name="order"/> when one ends. At each decision epoch the trial is judged against the values the other
    /// trials recorded at that epoch so far. Returns the epochs each trial trained.
    /// </summary>
    private static int[] Replay(EarlyTermination rule, List<double[]> curves, List<int> order, Random random)
    {
        var recorded = new Dictionary<int, List<(int Trial, double Value)>>();
        var trained = new int[curves.Count];
        double[] epochTime = curves.Select(_ => 0.5 + random.NextDouble()).ToArray();
        var running = new PriorityQueue<int, double>();
        int next = 0;
        for (; next < 4; next++)
        {
            running.Enqueue(order[next], epochTime[order[next]]);
        }
        while (running.TryDequeue(out int trial, out double now))
        {
            int epoch = ++trained[trial];
            double value = curves[trial][epoch - 1];
            var atEpoch = recorded.TryGetValue(epoch, out var list) ? list : recorded[epoch] = [];
            var peers = atEpoch.Select(r => r.Value).ToList();
            atEpoch.Add((trial, value));
            bool stop = epoch == MaxEpochs || (SweepPruning.IsDecisionEpoch(rule, epoch, MaxEpochs)
                && SweepPruning.ShouldPrune(rule, epoch, value, curves[trial][..epoch].Min(), peers));
            if (!stop)
            {
                running.Enqueue(trial, now + epochTime[trial]);
            }
            else if (next < order.Count)
            {
                running.Enqueue(order[next], now + epochTime[order[next++]]);
            }
        }
        return trained;
    }
}
