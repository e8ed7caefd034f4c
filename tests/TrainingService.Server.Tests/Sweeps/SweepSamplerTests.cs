using System.Text.Json.Nodes;
using TrainingService.Server.Sweeps;

namespace TrainingService.Server.Tests.Sweeps;

/// <summary>Grid, random and TPE proposals: reproducible from the seed, inside their spaces, covering a grid once.</summary>
public sealed class SweepSamplerTests
{
    private static readonly IReadOnlyList<ParameterSpace> Mixed =
    [
        new ChoiceSpace("loss", [JsonNode.Parse("""{"name": "mse"}"""), JsonNode.Parse("""{"name": "huber", "delta": 1}""")]),
        new RangeSpace("optimizer.learningRate", RangeDistribution.LogUniform, 1e-4, 1e-1),
        new RangeSpace("epochs", RangeDistribution.IntUniform, 5, 20),
        new RangeSpace("model.dropout", RangeDistribution.Uniform, 0, 0.5),
    ];

    [Theory]
    [InlineData(SweepMethod.Random)]
    [InlineData(SweepMethod.Tpe)]
    public void The_same_seed_gives_the_same_trials_and_another_seed_other_trials(SweepMethod method)
    {
        var first = Run(method, Mixed, seed: 7, trials: 30);
        var again = Run(method, Mixed, seed: 7, trials: 30);
        var other = Run(method, Mixed, seed: 8, trials: 30);

        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
        // Past the startup trials TPE reads the history, and the history differs with the seed too.
        Assert.NotEqual(first[20..], other[20..]);
    }

    [Fact]
    public void A_trial_does_not_depend_on_the_trials_proposed_before_it()
    {
        // A scheduler that restarts asks for trial 12 without having asked for 0–11 in this process.
        string direct = Propose(SweepMethod.Random, Mixed, 3, 12);
        var sequence = Run(SweepMethod.Random, Mixed, seed: 3, trials: 13);

        Assert.Equal(sequence[12], direct);
    }

    [Fact]
    public void The_trial_stream_is_SplitMix64_so_proposals_do_not_change_with_the_runtime()
    {
        // Reference outputs of SplitMix64 started from state 0 (seed 0, trial 0).
        var random = new TrialRandom(0, 0);
        Assert.Equal(0xE220A8397B1DCDAFUL, random.NextBits());
        Assert.Equal(0x6E789E6AA1B965F4UL, random.NextBits());
    }

    [Fact]
    public void Random_draws_stay_in_bounds_log_uniform_is_uniform_in_log_space_and_int_uniform_includes_both_ends()
    {
        var spaces = new ParameterSpace[]
        {
            new RangeSpace("lr", RangeDistribution.LogUniform, 1e-5, 1e-1),
            new RangeSpace("dropout", RangeDistribution.Uniform, 0.1, 0.4),
            new RangeSpace("layers", RangeDistribution.IntUniform, 1, 4),
        };
        var draws = Enumerable.Range(0, 2000).Select(i => SweepSampler.Propose(SweepMethod.Random, spaces, 11, i, [])!).ToList();
        double[] lr = draws.Select(a => Value(a, "lr")).ToArray();
        double[] dropout = draws.Select(a => Value(a, "dropout")).ToArray();
        double[] layers = draws.Select(a => Value(a, "layers")).ToArray();

        Assert.All(lr, v => Assert.InRange(v, 1e-5, 1e-1));
        Assert.All(dropout, v => Assert.InRange(v, 0.1, 0.4));
        // Uniform in log space: the median is near the geometric mean (1e-3) and each decade holds about a quarter.
        Assert.InRange(Math.Log10(Median(lr)), -3.1, -2.9);
        for (int decade = -5; decade < -1; decade++)
        {
            Assert.InRange(lr.Count(v => Math.Floor(Math.Log10(v)) == decade), 440, 560);
        }
        Assert.InRange(Median(dropout), 0.235, 0.265);
        Assert.All(layers, v => Assert.Equal(Math.Round(v), v));
        Assert.Equal([1.0, 2.0, 3.0, 4.0], layers.Distinct().Order());
        Assert.All(layers.GroupBy(v => v), g => Assert.InRange(g.Count(), 440, 560));
    }

    [Fact]
    public void A_grid_proposes_every_combination_once_then_nothing()
    {
        var spaces = new ParameterSpace[]
        {
            new ChoiceSpace("loss", [JsonValue.Create("mse"), JsonValue.Create("l1"), JsonValue.Create("huber")]),
            new RangeSpace("model.hiddenLayers.count", RangeDistribution.IntUniform, 2, 4),
            new ChoiceSpace("batchSize", [JsonValue.Create(16), JsonValue.Create(64)]),
        };

        Assert.Equal(18, SweepSampler.GridSize(spaces));
        var points = Enumerable.Range(0, 18).Select(i => SweepSampler.Propose(SweepMethod.Grid, spaces, 0, i, [])!.ToJson().ToJsonString()).ToList();
        var product =
            from loss in new[] { "mse", "l1", "huber" }
            from count in new[] { 2, 3, 4 }
            from batch in new[] { 16, 64 }
            select new JsonObject { ["loss"] = loss, ["model.hiddenLayers.count"] = count, ["batchSize"] = batch }.ToJsonString();

        Assert.Equal(product.Order(), points.Order());
        Assert.Equal(18, points.Distinct().Count());
        Assert.Null(SweepSampler.Propose(SweepMethod.Grid, spaces, 0, 18, []));
    }

    [Fact]
    public void Continuous_ranges_cannot_be_gridded()
    {
        var spaces = new ParameterSpace[] { new RangeSpace("lr", RangeDistribution.LogUniform, 1e-4, 1e-1) };

        Assert.Null(SweepSampler.GridSize(spaces));
        Assert.Throws<ArgumentException>(() => SweepSampler.Propose(SweepMethod.Grid, spaces, 0, 0, []));
    }

    [Theory]
    [InlineData(RangeDistribution.LogUniform, 0.0, 1.0)]
    [InlineData(RangeDistribution.Uniform, 2.0, 1.0)]
    [InlineData(RangeDistribution.IntUniform, 1.2, 1.8)]
    public void A_space_with_no_value_is_refused_rather_than_drawn_from(RangeDistribution distribution, double min, double max)
    {
        var spaces = new ParameterSpace[] { new RangeSpace("x", distribution, min, max) };

        Assert.Throws<ArgumentException>(() => SweepSampler.Propose(SweepMethod.Random, spaces, 0, 0, []));
        Assert.Throws<ArgumentException>(() => SweepSampler.Propose(SweepMethod.Random, [new ChoiceSpace("y", [])], 0, 0, []));
    }

    [Fact]
    public void An_assignment_writes_its_values_into_a_job_spec_at_their_paths()
    {
        var assignment = SweepSampler.Propose(SweepMethod.Grid, Mixed.Where(s => s is ChoiceSpace).ToList(), 0, 1, [])!;
        var original = JsonNode.Parse("""{"epochs": 10, "optimizer": {"name": "adam"}}""")!.AsObject();
        var spec = new Assignment([new("optimizer.learningRate", JsonValue.Create(0.01)), new("model.hiddenLayers", JsonNode.Parse("[64, 32]"))])
            .AppliedTo(original);
        spec = assignment.AppliedTo(spec);

        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            {"epochs": 10, "optimizer": {"name": "adam", "learningRate": 0.01}, "model": {"hiddenLayers": [64, 32]},
             "loss": {"name": "huber", "delta": 1}}
            """), spec), spec.ToJsonString());
        Assert.False(original.ContainsKey("model")); // the base spec is copied, never written
        Assert.Equal(assignment.ToJson().ToJsonString(), Assignment.FromJson(assignment.ToJson()).ToJson().ToJsonString());
    }

    /// <summary>Trials 0..n−1 of a sweep, each fed back with a synthetic objective so TPE has a history to read.</summary>
    internal static List<string> Run(SweepMethod method, IReadOnlyList<ParameterSpace> spaces, int seed, int trials)
    {
        var history = new List<ObservedTrial>();
        var proposals = new List<string>();
        for (int i = 0; i < trials; i++)
        {
            var assignment = SweepSampler.Propose(method, spaces, seed, i, history)!;
            history.Add(new ObservedTrial(i, assignment, Math.Pow(Math.Log10(Value(assignment, "optimizer.learningRate")) + 2, 2)));
            proposals.Add(assignment.ToJson().ToJsonString());
        }
        return proposals;
    }

    private static string Propose(SweepMethod method, IReadOnlyList<ParameterSpace> spaces, int seed, int index) =>
        SweepSampler.Propose(method, spaces, seed, index, [])!.ToJson().ToJsonString();

    internal static double Value(Assignment assignment, string path) =>
        assignment.TryGet(path, out var node) ? Assignment.Number(node)!.Value : throw new KeyNotFoundException(path);

    internal static double Median(IReadOnlyList<double> values) => SweepPruning.Median(values);
}
