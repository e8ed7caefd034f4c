using System.Globalization;
using System.Text.Json.Nodes;
using TrainingService.Server.Sweeps;

namespace TrainingService.Server.Tests.Sweeps;

/// <summary>The loss report: groups by canonical loss, the winner, and a verdict that respects the trial-to-trial noise.</summary>
public sealed class LossVerdictTests
{
    private static readonly Objective ValMae = new("val.mae", Minimize: true);
    private static readonly Objective ValRmse = new("val.rmse", Minimize: true);

    [Fact]
    public void A_robust_loss_that_clearly_wins_is_named_with_its_margin_and_the_heavy_tail_reading()
    {
        var trials = Trials("""{"name": "huber", "delta": 1}""", 0.80, 0.81, 0.83, 0.95)
            .Concat(Trials("""{"name": "l1"}""", 0.86, 0.87, 0.90))
            .Concat(Trials("""{"name": "mse"}""", 0.97, 0.98, 1.00, 1.30))
            .ToList();

        var report = LossVerdict.Compute(trials, ValMae);

        Assert.Equal("huber", report.Best!.Loss["name"]!.GetValue<string>());
        Assert.Equal(0.80, report.Best.Objective);
        Assert.Equal(["huber (delta 1)", "l1", "mse"], report.Groups.Select(g => g.Label));
        Assert.Equal(true, report.Numbers.BeyondNoise);
        string overL1 = Percent((0.86 - 0.80) / 0.86);
        string overMse = Percent((0.97 - 0.80) / 0.97);
        Assert.Contains($"huber (delta 1) beats l1 by {overL1} on val.mae", report.Verdict);
        Assert.Contains($"beats mse by {overMse}", report.Verdict);
        Assert.Contains("heavy-tailed", report.Verdict);
        Assert.Equal((0.86 - 0.80) / 0.86, report.Numbers.RelativeGap!.Value, 12);
    }

    [Fact]
    public void Mse_winning_beyond_the_noise_reads_as_light_tailed_noise()
    {
        var trials = Trials("mse", 0.50, 0.51, 0.52).Concat(Trials("""{"name": "l1"}""", 0.60, 0.61, 0.63)).ToList();

        var report = LossVerdict.Compute(trials, ValRmse);

        Assert.Equal("mse", report.Best!.Label);
        Assert.Contains($"mse beats l1 by {Percent(0.10 / 0.60)} on val.rmse", report.Verdict);
        Assert.Contains("light-tailed", report.Verdict);
    }

    [Fact]
    public void A_gap_within_the_trial_to_trial_noise_names_no_winner()
    {
        // Within each loss the best three spread by 0.03; the losses' bests differ by 0.01.
        var trials = Trials("mse", 1.00, 1.03, 1.06, 1.40).Concat(Trials("""{"name": "huber", "delta": 1}""", 0.99, 1.02, 1.05)).ToList();

        var report = LossVerdict.Compute(trials, ValRmse);

        Assert.Equal(0.03, report.Numbers.Noise!.Value, 9);
        Assert.Equal(false, report.Numbers.BeyondNoise);
        Assert.StartsWith("No loss wins beyond the trial-to-trial noise on val.rmse", report.Verdict);
        Assert.DoesNotContain("beats", report.Verdict);
        Assert.DoesNotContain("heavy-tailed", report.Verdict);
    }

    [Fact]
    public void Two_robust_losses_that_tie_still_say_that_the_best_beats_mse_beyond_the_noise()
    {
        // l1 and huber within 0.01 of each other (noise 0.02); mse 0.25 behind: the tie must not hide the win over mse.
        var trials = Trials("""{"name": "l1"}""", 1.09, 1.11).Concat(Trials("""{"name": "huber", "delta": 1}""", 1.10, 1.12))
            .Concat(Trials("mse", 1.35, 1.38)).ToList();

        var report = LossVerdict.Compute(trials, ValMae);

        Assert.Equal(false, report.Numbers.BeyondNoise);
        Assert.StartsWith("No loss wins beyond the trial-to-trial noise on val.mae: l1 and huber (delta 1)", report.Verdict);
        Assert.Contains($"l1 beats mse by {Percent((1.35 - 1.09) / 1.35)} on val.mae, beyond the noise", report.Verdict);
        Assert.Contains("heavy-tailed residuals", report.Verdict);
    }

    [Fact]
    public void With_one_trial_per_loss_the_gap_is_reported_but_not_tested()
    {
        var report = LossVerdict.Compute([.. Trials("mse", 1.0), .. Trials("l1", 0.9)], ValMae);

        Assert.Null(report.Numbers.Noise);
        Assert.Null(report.Numbers.BeyondNoise);
        Assert.Contains("cannot be estimated", report.Verdict);
        Assert.Equal("l1", report.Best!.Label);
    }

    [Fact]
    public void Losses_group_by_name_and_parameters_whatever_the_key_order_alias_or_default_spelling()
    {
        var trials = Trials("""{"name": "huber", "delta": 1}""", 1.0)
            .Concat(Trials("""{"delta": 1.0, "name": "huber"}""", 1.1))
            .Concat(Trials("""{"name": "Huber"}""", 1.2))
            .Concat(Trials("""{"name": "huber", "delta": 2}""", 1.3))
            .Concat(Trials("\"mae\"", 1.4))
            .Concat(Trials("""{"name": "l1"}""", 1.5))
            .ToList();

        var groups = LossVerdict.Compute(trials, ValMae).Groups;

        Assert.Equal([("huber (delta 1)", 3), ("huber (delta 2)", 1), ("l1", 2)], groups.Select(g => (g.Label, g.Trials)));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"name": "huber", "delta": 1}"""), groups[0].Loss));
    }

    [Fact]
    public void Combined_losses_group_regardless_of_term_order_and_read_as_a_weighted_sum()
    {
        var a = LossLabels.Canonical(JsonNode.Parse("""{"terms": [{"name": "huber", "weight": 1}, {"name": "l1", "weight": 0.5}]}"""));
        var b = LossLabels.Canonical(JsonNode.Parse("""{"terms": [{"weight": 0.5, "name": "mae"}, {"name": "huber"}]}"""));

        Assert.Equal(a.ToJsonString(), b.ToJsonString());
        Assert.Equal("huber (delta 1) + 0.5 × l1", LossLabels.Label(a));
    }

    [Fact]
    public void Epochs_to_within_one_percent_is_the_first_epoch_that_close_to_the_curves_own_best()
    {
        // Best 1.0: within 1% means at most 1.01, first reached at epoch 4 (1.009), not epoch 3 (1.2).
        Assert.Equal(4, LossVerdict.EpochsToWithin1Percent([(1, 3.0), (2, 2.0), (3, 1.2), (4, 1.009), (5, 1.05), (6, 1.0)], minimize: true));
        // Maximised (accuracy 0.91): at least 0.9009.
        Assert.Equal(4, LossVerdict.EpochsToWithin1Percent([(1, 0.5), (2, 0.8), (3, 0.893), (4, 0.905), (5, 0.91)], minimize: false));
        Assert.Null(LossVerdict.EpochsToWithin1Percent([], minimize: true));

        var report = LossVerdict.Compute([new LossTrial(Guid.NewGuid(), JsonValue.Create("mse")!, 1.0, false, [(1, 3.0), (2, 1.005), (3, 1.0)])], ValRmse);
        Assert.Equal(2, report.Groups[0].EpochsToWithin1Percent);
    }

    [Fact]
    public void Pruned_trials_count_only_for_a_loss_none_of_whose_trials_finished()
    {
        var trials = new List<LossTrial>
        {
            new(Guid.NewGuid(), JsonValue.Create("mse")!, 1.0, Pruned: false, []),
            new(Guid.NewGuid(), JsonValue.Create("mse")!, 0.5, Pruned: true, []),
            new(Guid.NewGuid(), JsonValue.Create("l1")!, null, Pruned: true, [(1, 2.0), (2, 1.2)]),
        };

        var report = LossVerdict.Compute(trials, ValRmse);

        var mse = report.Groups.Single(g => g.Label == "mse");
        var l1 = report.Groups.Single(g => g.Label == "l1");
        Assert.Equal((1.0, false, 1, 1), (mse.Best!.Value, mse.RankedOnPruned, mse.Finished, mse.Pruned));
        Assert.Equal((1.2, true), (l1.Best!.Value, l1.RankedOnPruned));
    }

    [Fact]
    public void A_maximised_metric_ranks_the_highest_value_first()
    {
        var report = LossVerdict.Compute([.. Trials("bce", 0.90, 0.89), .. Trials("focal", 0.95, 0.94)], new Objective("val.accuracy", Minimize: false));

        Assert.Equal("focal (gamma 2)", report.Best!.Label); // alpha has no single default (binary 0.25, or one per class)
        Assert.Equal(0.95, report.Groups[0].Best);
        Assert.Equal(0.945, report.Groups[0].Median!.Value, 12);
        Assert.Contains($"beats bce by {Percent(0.05 / 0.90)} on val.accuracy", report.Verdict);
    }

    [Fact]
    public void No_values_yet_gives_no_winner()
    {
        var report = LossVerdict.Compute([new LossTrial(Guid.NewGuid(), JsonValue.Create("mse")!, null, false, [])], ValRmse);

        Assert.Null(report.Best);
        Assert.Contains("No trial has a val.rmse value yet", report.Verdict);
    }

    /// <summary>Finished trials of one loss, given as JSON (<c>{"name": …}</c>, <c>"\"mae\""</c>) or a bare name.</summary>
    private static IEnumerable<LossTrial> Trials(string loss, params double[] objectives) =>
        objectives.Select(o => new LossTrial(Guid.NewGuid(), loss[0] is '{' or '"' ? JsonNode.Parse(loss)! : JsonValue.Create(loss),
            o, false, [(1, o * 2), (2, o)]));

    private static string Percent(double fraction) =>
        (fraction * 100).ToString(fraction >= 0.1 ? "0" : "0.#", CultureInfo.InvariantCulture) + "%";
}
