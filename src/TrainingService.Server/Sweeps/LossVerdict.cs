using System.Globalization;
using System.Text.Json.Nodes;

namespace TrainingService.Server.Sweeps;

/// <summary>A sweep's objective: a metric the trials report (<c>val.rmse</c>) and its direction.</summary>
public sealed record Objective(string Metric, bool Minimize);

/// <summary>
/// One finished or pruned trial, for the loss report. <paramref name="Objective"/> is the objective metric in its own
/// units and direction (not negated), null when the trial has none; <paramref name="Curve"/> is that metric per epoch.
/// </summary>
public sealed record LossTrial(Guid JobId, JsonNode Loss, double? Objective, bool Pruned, IReadOnlyList<(int Epoch, double Value)> Curve);

/// <summary>
/// The trials of one loss. <paramref name="Best"/> and <paramref name="Median"/> are over the finished trials, or over
/// the pruned ones when none finished (<paramref name="RankedOnPruned"/>). <paramref name="EpochsToWithin1Percent"/> is
/// the first epoch at which the best trial's curve came within 1% of that curve's own best value.
/// </summary>
public sealed record LossGroup(JsonObject Loss, string Label, int Trials, int Finished, int Pruned, bool RankedOnPruned,
    double? Best, double? Median, int? EpochsToWithin1Percent, Guid? BestJobId);

/// <summary>The loss of the best trial, and its objective.</summary>
public sealed record LossBest(JsonObject Loss, string Label, double Objective);

/// <summary>
/// The numbers the verdict is written from. <paramref name="RelativeGap"/> is how much better the winner's best is than
/// the runner-up's, as a fraction of the runner-up's; <paramref name="Noise"/> the trial-to-trial noise estimate (null
/// when no loss has two trials); <paramref name="BeyondNoise"/> null when the gap could not be tested.
/// </summary>
public sealed record VerdictNumbers(string Metric, string? Winner, double? WinnerObjective, string? RunnerUp, double? RunnerUpObjective,
    double? AbsoluteGap, double? RelativeGap, double? Noise, bool? BeyondNoise);

/// <summary>What <c>GET /api/sweeps/{id}/losses</c> answers: the groups (best first), the winner, and the verdict.</summary>
public sealed record LossReport(IReadOnlyList<LossGroup> Groups, LossBest? Best, string Verdict, VerdictNumbers Numbers);

/// <summary>
/// Answers "which loss fits this data?" from a sweep's trials, on the sweep's objective metric, which must not depend on
/// the loss (val.rmse, not valLoss). The rules, also in docs/sweeps.md:
/// <list type="bullet">
/// <item>A trial's value is its objective, or for a pruned trial without one its curve's last value. Pruned trials are
/// left out of a loss's best and median unless none of its trials finished: a pruned trial's value is an early one.</item>
/// <item>Noise: the pooled standard deviation of each loss's best three finished values (losses with at least two).
/// The best few trials of a loss differ mostly by seed and nearby hyperparameters, so their spread estimates what
/// re-running the winner would move; taking the whole group would add the spread of bad learning rates.</item>
/// <item>The winner beats the runner-up beyond noise when the gap between their best values exceeds that noise. Otherwise
/// the verdict says no loss wins beyond the noise, and names the best one only as best.</item>
/// </list>
/// </summary>
public static class LossVerdict
{
    /// <summary>How many of each loss's best values estimate the noise.</summary>
    public const int NoiseTrials = 3;

    /// <summary>Losses that weigh large residuals less than mse does, by their catalogue names.</summary>
    private static readonly HashSet<string> Robust = ["huber", "l1", "smooth_l1", "log_cosh"];

    /// <summary>
    /// The report for <paramref name="trials"/> (any mix of finished and pruned) on <paramref name="objective"/>; trials
    /// without a value still count in their group's Trials.
    /// </summary>
    public static LossReport Compute(IReadOnlyList<LossTrial> trials, Objective objective)
    {
        var groups = trials
            .GroupBy(t => LossLabels.Canonical(t.Loss).ToJsonString(), StringComparer.Ordinal)
            .Select(g => Summarise(g.ToList(), objective))
            .OrderBy(g => g.Group.Best is null)
            .ThenBy(g => g.Group.Best is { } b ? (objective.Minimize ? b : -b) : 0)
            .ThenBy(g => g.Group.Label, StringComparer.Ordinal)
            .ToList();
        var ranked = groups.Where(g => g.Group.Best is not null).ToList();
        double? noise = Noise(groups.Select(g => g.FinishedValues));
        var best = ranked.Count == 0 ? null : new LossBest(ranked[0].Group.Loss, ranked[0].Group.Label, ranked[0].Group.Best!.Value);
        var (verdict, numbers) = ranked.Count switch
        {
            0 => ($"No trial has a {objective.Metric} value yet.", Empty(objective, noise)),
            1 => ($"Only {ranked[0].Group.Label} has {objective.Metric} values (best {LossLabels.Format(best!.Objective)}); there is no other loss to compare.",
                Empty(objective, noise) with { Winner = best.Label, WinnerObjective = best.Objective }),
            _ => Compare(ranked.Select(g => g.Group).ToList(), objective, noise),
        };
        return new LossReport(groups.Select(g => g.Group).ToList(), best, verdict, numbers);
    }

    /// <summary>The first epoch whose value is within 1% (of its magnitude) of the curve's best value; null for no curve.</summary>
    public static int? EpochsToWithin1Percent(IReadOnlyList<(int Epoch, double Value)> curve, bool minimize)
    {
        var points = curve.Where(p => double.IsFinite(p.Value)).OrderBy(p => p.Epoch).ToList();
        if (points.Count == 0)
        {
            return null;
        }
        double best = minimize ? points.Min(p => p.Value) : points.Max(p => p.Value);
        double tolerance = 0.01 * Math.Abs(best);
        return points.First(p => minimize ? p.Value <= best + tolerance : p.Value >= best - tolerance).Epoch;
    }

    /// <summary>Pooled standard deviation of each loss's best <see cref="NoiseTrials"/> values; null when no loss has two.</summary>
    internal static double? Noise(IEnumerable<IReadOnlyList<double>> finishedBestFirst)
    {
        double squares = 0;
        int freedom = 0;
        foreach (var values in finishedBestFirst.Where(v => v.Count >= 2))
        {
            var top = values.Take(NoiseTrials).ToList();
            double mean = top.Average();
            squares += top.Sum(v => (v - mean) * (v - mean));
            freedom += top.Count - 1;
        }
        return freedom == 0 ? null : Math.Sqrt(squares / freedom);
    }

    private static (LossGroup Group, IReadOnlyList<double> FinishedValues) Summarise(List<LossTrial> trials, Objective objective)
    {
        var canonical = LossLabels.Canonical(trials[0].Loss);
        var valued = trials
            .Select(t => (Trial: t, Value: t.Objective ?? (t.Pruned && t.Curve.Count > 0 ? t.Curve.MaxBy(p => p.Epoch).Value : null)))
            .Where(t => t.Value is { } v && double.IsFinite(v))
            .Select(t => (t.Trial, Value: t.Value!.Value))
            .OrderBy(t => objective.Minimize ? t.Value : -t.Value)
            .ThenBy(t => t.Trial.JobId)
            .ToList();
        var finished = valued.Where(t => !t.Trial.Pruned).ToList();
        var ranked = finished.Count > 0 ? finished : valued;
        var top = ranked.Count > 0 ? ranked[0].Trial : null;
        var group = new LossGroup(canonical, LossLabels.Label(canonical), trials.Count, trials.Count(t => !t.Pruned), trials.Count(t => t.Pruned),
            RankedOnPruned: finished.Count == 0 && ranked.Count > 0,
            Best: ranked.Count > 0 ? ranked[0].Value : null,
            Median: ranked.Count > 0 ? SweepPruning.Median(ranked.Select(t => t.Value).ToList()) : null,
            EpochsToWithin1Percent: top is null ? null : EpochsToWithin1Percent(top.Curve, objective.Minimize),
            BestJobId: top?.JobId);
        return (group, finished.Select(t => t.Value).ToList());
    }

    private static (string Verdict, VerdictNumbers Numbers) Compare(List<LossGroup> ranked, Objective objective, double? noise)
    {
        var (winner, runnerUp) = (ranked[0], ranked[1]);
        double gap = Math.Abs(runnerUp.Best!.Value - winner.Best!.Value);
        double? relative = runnerUp.Best.Value == 0 ? null : gap / Math.Abs(runnerUp.Best.Value);
        bool? beyond = noise is { } n ? gap > n : null;
        var numbers = new VerdictNumbers(objective.Metric, winner.Label, winner.Best, runnerUp.Label, runnerUp.Best, gap, relative, noise, beyond);
        string metric = objective.Metric;
        string versus = $"best {LossLabels.Format(winner.Best.Value)} vs {LossLabels.Format(runnerUp.Best.Value)}";
        string verdict = beyond switch
        {
            null => $"{winner.Label} has the best {metric}, {By(relative, gap)} better than {runnerUp.Label} ({versus}), but with one trial per loss " +
                "the trial-to-trial noise cannot be estimated, so the gap is not tested.",
            false => $"No loss wins beyond the trial-to-trial noise on {metric}: {winner.Label} and {runnerUp.Label} differ by {By(relative, gap)} " +
                $"({versus}), within the noise (±{FormatNoise(noise!.Value)})." + AgainstMse(ranked, objective, noise.Value),
            true => $"{winner.Label} beats {runnerUp.Label} by {By(relative, gap)} on {metric} ({versus}; trial-to-trial noise " +
                $"±{FormatNoise(noise!.Value)})." + AgainstMse(ranked, objective, noise.Value),
        };
        return (verdict, numbers);
    }

    /// <summary>
    /// What a win over mse says about the data. mse is the maximum-likelihood loss under Gaussian noise; l1, huber and their
    /// kin give outliers bounded influence. So a robust loss beating mse beyond the noise points at heavy-tailed residuals,
    /// and mse winning at light tails. Said only when mse was tried and the win over it is itself beyond the noise; also
    /// when the top two tie (two robust losses within the noise of each other can both beat mse clearly).
    /// </summary>
    private static string AgainstMse(List<LossGroup> ranked, Objective objective, double noise)
    {
        var (winner, runnerUp) = (ranked[0], ranked[1]);
        string? winnerName = LossLabels.Name(winner.Loss);
        if (winnerName == "mse")
        {
            return Math.Abs(runnerUp.Best!.Value - winner.Best!.Value) > noise ? " mse winning is consistent with light-tailed (Gaussian-like) noise." : "";
        }
        if (ranked.FirstOrDefault(g => LossLabels.Name(g.Loss) == "mse") is not { } mse
            || winnerName is null || !Robust.Contains(winnerName))
        {
            return "";
        }
        double gap = Math.Abs(mse.Best!.Value - winner.Best!.Value);
        if (gap <= noise)
        {
            return "";
        }
        string again = mse == runnerUp ? "" :
            $" {winner.Label} beats mse by {By(mse.Best.Value == 0 ? null : gap / Math.Abs(mse.Best.Value), gap)} on {objective.Metric}, beyond the noise " +
            $"(best {LossLabels.Format(mse.Best.Value)}).";
        return again + " A robust loss beating mse is consistent with heavy-tailed residuals (outliers).";
    }

    private static string By(double? relative, double gap) => relative is { } r
        ? (r * 100).ToString(r >= 0.1 ? "0" : "0.#", CultureInfo.InvariantCulture) + "%"
        : LossLabels.Format(gap);

    /// <summary>Two significant digits: the noise is itself an estimate from a handful of trials.</summary>
    private static string FormatNoise(double noise) => noise.ToString("G2", CultureInfo.InvariantCulture);

    private static VerdictNumbers Empty(Objective objective, double? noise) => new(objective.Metric, null, null, null, null, null, null, noise, null);
}
