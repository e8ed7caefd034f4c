using System.Text.Json.Nodes;

namespace TrainingService.Server.Sweeps;

/// <summary>
/// Independent TPE as Optuna's <c>TPESampler</c> runs it by default (Bergstra et al. 2011; Watanabe 2023). The trials
/// with an objective are split into the best γ(n) = min(⌈0.1·n⌉, 25) ("good") and the rest ("bad"). For each parameter
/// on its own, a Parzen estimator l(x) is fitted to the good trials' values and g(x) to the bad ones'; 24 candidates are
/// drawn from l and the one with the largest l(x)/g(x) is kept: likely under the good trials, unlikely under the bad.
/// Numeric parameters use truncated Gaussian mixtures (in log space for log_uniform); lists use smoothed counts.
/// </summary>
internal static class TreeParzen
{
    /// <summary>Candidates drawn from l(x) per parameter (Optuna's n_ei_candidates).</summary>
    public const int Candidates = 24;

    /// <summary>Optuna caps the good set at 25 trials however long the sweep runs.</summary>
    private const int MaxGood = 25;

    public static Assignment Propose(IReadOnlyList<ParameterSpace> spaces, IReadOnlyList<ObservedTrial> history, ref TrialRandom random)
    {
        var scored = history.Where(t => t.Objective is { } o && double.IsFinite(o))
            .OrderBy(t => t.Objective).ThenBy(t => t.Index).ToList();
        int goodCount = Math.Min((int)Math.Ceiling(0.1 * scored.Count), MaxGood);
        // Oldest first: the observation weights below favour recent trials.
        var good = scored.Take(goodCount).OrderBy(t => t.Index).ToList();
        var bad = scored.Skip(goodCount).OrderBy(t => t.Index).ToList();

        var values = new List<KeyValuePair<string, JsonNode?>>(spaces.Count);
        foreach (var space in spaces)
        {
            JsonNode? value = space switch
            {
                ChoiceSpace choice => ProposeChoice(choice, good, bad, ref random),
                RangeSpace range => ProposeRange(range, good, bad, ref random),
                _ => throw new ArgumentException($"Unknown parameter space {space.GetType().Name}.", nameof(spaces)),
            };
            values.Add(SweepSampler.Pair(space.Path, value));
        }
        return new Assignment(values);
    }

    /// <summary>
    /// Optuna's default_weights: equal weights under 25 observations; beyond, the older ones ramp linearly from 1/n up
    /// to 1 and the latest 25 weigh 1, so the estimator follows the search as it moves.
    /// </summary>
    internal static double[] ObservationWeights(int count)
    {
        var weights = Enumerable.Repeat(1.0, count).ToArray();
        int ramp = count - MaxGood;
        for (int i = 0; i < ramp; i++)
        {
            weights[i] = ramp == 1 ? 1.0 / count : 1.0 / count + (1.0 - 1.0 / count) * i / (ramp - 1);
        }
        return weights;
    }

    private static JsonNode? ProposeRange(RangeSpace range, List<ObservedTrial> good, List<ObservedTrial> bad, ref TrialRandom random)
    {
        var scale = new Scale(range);
        if (!(scale.High > scale.Low))
        {
            return scale.ToJson(scale.Low); // a one-point range: nothing to model
        }
        var below = ParzenEstimator.Fit(scale.Observations(good), scale.Low, scale.High);
        var above = ParzenEstimator.Fit(scale.Observations(bad), scale.Low, scale.High);
        double best = double.NaN, bestScore = double.NegativeInfinity;
        for (int i = 0; i < Candidates; i++)
        {
            double x = scale.Snap(below.Sample(ref random));
            double score = below.LogDensity(x) - above.LogDensity(x);
            if (score > bestScore)
            {
                (best, bestScore) = (x, score);
            }
        }
        return scale.ToJson(best);
    }

    private static JsonNode? ProposeChoice(ChoiceSpace choice, List<ObservedTrial> good, List<ObservedTrial> bad, ref TrialRandom random)
    {
        double[] below = ChoiceProbabilities(choice, good);
        double[] above = ChoiceProbabilities(choice, bad);
        int best = 0;
        double bestScore = double.NegativeInfinity;
        for (int i = 0; i < Candidates; i++)
        {
            int c = Pick(below, random.NextDouble());
            double score = Math.Log(below[c]) - Math.Log(above[c]);
            if (score > bestScore)
            {
                (best, bestScore) = (c, score);
            }
        }
        return choice.Values[best]?.DeepClone();
    }

    /// <summary>
    /// p(c) = (Σ weights of the trials that chose c + 1/C) / (Σ weights + 1): weighted counts smoothed by a prior of
    /// weight one spread over the C values (Optuna's prior_weight), so no value ever has probability zero.
    /// </summary>
    private static double[] ChoiceProbabilities(ChoiceSpace choice, List<ObservedTrial> trials)
    {
        int count = choice.Values.Count;
        double[] weights = ObservationWeights(trials.Count);
        var mass = Enumerable.Repeat(1.0 / count, count).ToArray();
        double total = 1.0;
        for (int i = 0; i < trials.Count; i++)
        {
            if (!trials[i].Assignment.TryGet(choice.Path, out var value))
            {
                continue;
            }
            int c = IndexOf(choice.Values, value);
            if (c >= 0)
            {
                mass[c] += weights[i];
                total += weights[i];
            }
        }
        return mass.Select(m => m / total).ToArray();
    }

    private static int IndexOf(IReadOnlyList<JsonNode?> values, JsonNode? value)
    {
        for (int i = 0; i < values.Count; i++)
        {
            if (JsonNode.DeepEquals(values[i], value))
            {
                return i;
            }
        }
        return -1;
    }

    private static int Pick(double[] probabilities, double u)
    {
        for (int i = 0; i < probabilities.Length - 1; i++)
        {
            u -= probabilities[i];
            if (u < 0)
            {
                return i;
            }
        }
        return probabilities.Length - 1;
    }

    /// <summary>
    /// Where a range is modelled: log_uniform in log space (a Gaussian there is a log-normal bump, scale-free); int_uniform
    /// on [first − ½, last + ½] so each integer gets an equal share of the line, candidates rounded back to integers.
    /// </summary>
    private sealed record Scale(RangeSpace Range)
    {
        public double Low => Range.Distribution switch
        {
            RangeDistribution.LogUniform => Math.Log(Range.Min),
            RangeDistribution.IntUniform => Range.IntegerBounds.First - 0.5,
            _ => Range.Min,
        };

        public double High => Range.Distribution switch
        {
            RangeDistribution.LogUniform => Math.Log(Range.Max),
            RangeDistribution.IntUniform => Range.IntegerBounds.Last + 0.5,
            _ => Range.Max,
        };

        public List<double> Observations(List<ObservedTrial> trials) =>
            trials.Select(t => t.Assignment.TryGet(Range.Path, out var node) ? Assignment.Number(node) : null)
                .OfType<double>()
                .Where(v => v >= Range.Min && v <= Range.Max && (Range.Distribution != RangeDistribution.LogUniform || v > 0))
                .Select(v => Range.Distribution == RangeDistribution.LogUniform ? Math.Log(v) : v)
                .ToList();

        public double Snap(double x) => Range.Distribution == RangeDistribution.IntUniform
            ? Math.Clamp(Math.Round(x), Range.IntegerBounds.First, Range.IntegerBounds.Last)
            : Math.Clamp(x, Low, High);

        public JsonNode ToJson(double x) => Range.Distribution switch
        {
            RangeDistribution.LogUniform => JsonValue.Create(Math.Clamp(Math.Exp(x), Range.Min, Range.Max)),
            RangeDistribution.IntUniform => JsonValue.Create((long)x),
            _ => JsonValue.Create(x),
        };
    }
}
