using TrainingService.Compute.Losses;
using static TrainingService.Compute.Tests.Losses.Evaluate;

namespace TrainingService.Compute.Tests.Losses;

/// <summary>Every value and gradient of shared/reference/losses.md §6, reproduced by the kernels (relative error ≤ 1e-5).</summary>
public sealed class ReferenceVectorTests
{
    // Regression/binary vector: x = [0.2, −1.5, 3.0], y = [0, 1, 1], mean over n = 3.
    private static readonly double[] X = [0.2, -1.5, 3.0];
    private static readonly double[] Y = [0, 1, 1];

    public static TheoryData<string, Dictionary<string, object?>?, double, double[]> Regression => new()
    {
        { "mse", null, 3.43, [0.1333333333, -1.6666666667, 1.3333333333] },
        { "l1", null, 1.5666666667, [0.3333333333, -0.3333333333, 0.3333333333] },
        { "huber", null, 1.1733333333, [0.0666666667, -0.3333333333, 0.3333333333] },
        { "huber", P(("delta", 2.0)), 1.6733333333, [0.0666666667, -0.6666666667, 0.6666666667] },
        { "smooth_l1", P(("beta", 2.0)), 0.8366666667, [0.0333333333, -0.3333333333, 0.3333333333] },
        { "log_cosh", null, 1.0528129957, [0.0657917734, -0.3288714327, 0.3213425267] },
        { "bce_with_logits", null, 0.8493798330, [0.1832779991, -0.2725248254, -0.0158086244] },
        { "bce_with_logits", P(("pos_weight", 2.0)), 1.4327133762, [0.1832779991, -0.5450496508, -0.0316172488] },
        { "focal", null, 0.1551046218, [0.0958666667, -0.0801187240, -0.0000262393] },
        { "hinge", null, 1.2333333333, [0.3333333333, -0.3333333333, 0] },
        { "squared_hinge", null, 2.5633333333, [0.8, -1.6666666667, 0] },
        { "poisson_nll", null, 6.6766899472, [0.4071342527, -0.2589566133, 6.3618456411] },
    };

    [Theory]
    [MemberData(nameof(Regression))]
    public void Elementwise_loss_matches_the_reference_value_and_gradient(string name, Dictionary<string, object?>? parameters,
        double loss, double[] gradient)
    {
        var result = Flat(name, X, Y, parameters);

        LossAssert.Close(loss, result.Loss, what: name);
        LossAssert.AllClose(gradient, result.Gradient, floor: 1e-4);
    }

    [Fact]
    public void Focal_sum_reduction_matches_torchvision()
    {
        LossAssert.Close(0.4653138653, Flat("focal", X, Y, reduction: Reduction.Sum).Loss);
    }

    [Fact]
    public void Bce_on_sigmoid_probabilities_matches_bce_with_logits_and_its_probability_gradient()
    {
        double[] p = X.Select(v => 1 / (1 + Math.Exp(-v))).ToArray();

        var result = Flat("bce", p, Y);

        LossAssert.Close(0.8493798330, result.Loss);
        LossAssert.AllClose([0.7404675861, -1.8272296901, -0.3499290228], result.Gradient);
    }

    [Fact]
    public void Gaussian_nll_with_per_element_variance_matches_the_reference()
    {
        double[] variance = [0.5, 1, 2];

        var result = Flat("gaussian_nll", X, Y, variance: variance);
        var full = Flat("gaussian_nll", X, Y, P(("full", true)), variance: variance);

        LossAssert.Close(1.3883333333, result.Loss);
        LossAssert.Close(2.3072718665, full.Loss);
        LossAssert.AllClose([0.1333333333, -0.8333333333, 0.3333333333], result.Gradient);
    }

    [Fact]
    public void Binary_class_weights_match_keras_class_weight_with_sum_over_batch_size()
    {
        var loss = CombinedLoss.Bind([new LossTermSpec("bce_with_logits")], new LossBinding(TargetLayout.Elementwise, 1, false, [1.0, 2.0]));

        var result = Run(loss, new LossInput(F(X), F(Y), 3, 1));

        LossAssert.Close(1.4327133762, result.Loss);
    }

    [Fact]
    public void Combined_huber_plus_half_l1_is_the_weighted_sum_of_its_terms()
    {
        var loss = CombinedLoss.Bind([new LossTermSpec("huber"), new LossTermSpec("l1", Weight: 0.5)],
            new LossBinding(TargetLayout.Elementwise, 1, false));

        var result = Run(loss, new LossInput(F(X), F(Y), 3, 1));

        LossAssert.Close(1.9566666667, result.Loss);
        LossAssert.AllClose([0.2333333333, -0.5, 0.5], result.Gradient);
    }

    // Multiclass vector: C = B = 3.
    private static readonly double[][] Logits = [[2.0, 1.0, 0.1], [0.5, 2.5, -1.0], [0.0, 0.0, 3.0]];
    private static readonly double[] Classes = [0, 2, 1];
    private static readonly double[] ClassWeights = [1.0, 2.0, 0.5];
    private static readonly double[][] Soft = [[.7, .2, .1], [.1, .1, .8], [0, .5, .5]];

    [Fact]
    public void Cross_entropy_mean_matches_pytorch()
    {
        var result = Rows("cross_entropy", Logits, Classes);

        LossAssert.Close(2.3883770599, result.Loss);
        LossAssert.AllClose([-0.1136662870, 0.0808109902, 0.0328552968, 0.0387048449, 0.2859922702, -0.3246971151,
            0.0150928336, -0.3182404998, 0.3031476662], result.Gradient);
    }

    [Fact]
    public void Weighted_cross_entropy_divides_by_the_sum_of_target_weights()
    {
        var result = Rows("cross_entropy", Logits, Classes, P(("weight", ClassWeights)));

        LossAssert.Close(2.4095614379, result.Loss);
        LossAssert.AllClose([-0.0974282460, 0.0692665631, 0.0281616830, 0.0165877907, 0.1225681158, -0.1391559065,
            0.0258734290, -0.5455551424, 0.5196817134], result.Gradient);
    }

    [Fact]
    public void Label_smoothing_matches_pytorch()
    {
        var result = Rows("cross_entropy", Logits, Classes, P(("label_smoothing", 0.1)));

        LossAssert.Close(2.3317103933, result.Loss);
        LossAssert.AllClose([-0.0914440648, 0.0696998791, 0.0217441857, 0.0275937338, 0.2748811591, -0.3024748929,
            0.0039817225, -0.2960182775, 0.2920365551], result.Gradient);
    }

    [Fact]
    public void Label_smoothing_with_class_weights_reproduces_pytorchs_weighted_form()
    {
        var result = Rows("cross_entropy", Logits, Classes, P(("label_smoothing", 0.1)), classWeights: ClassWeights);

        LossAssert.Close(2.3403001430, result.Loss);
        LossAssert.AllClose([-0.0752425263, 0.0513733867, 0.0238691396, 0.0092756866, 0.1198629122, -0.1291385988,
            0.0152715599, -0.5085379639, 0.4932664039], result.Gradient);
    }

    [Fact]
    public void Probability_targets_with_weights_and_smoothing_divide_by_the_batch()
    {
        double[][] oneHot = [[1, 0, 0], [0, 0, 1], [0, 1, 0]];

        var plain = SoftRows("cross_entropy", Logits, oneHot, P(("weight", ClassWeights)));
        var smoothed = SoftRows("cross_entropy", Logits, oneHot, P(("weight", ClassWeights), ("label_smoothing", 0.1)));

        LossAssert.Close(2.8111550109, plain.Loss);
        LossAssert.Close(2.7303501668, smoothed.Loss);
    }

    [Fact]
    public void Ignored_rows_are_skipped_with_and_without_weights()
    {
        double[] targets = [0, -100, 1];

        var plain = Rows("cross_entropy", Logits, targets);
        var weighted = Rows("cross_entropy", Logits, targets, P(("weight", ClassWeights)));

        LossAssert.Close(1.7559764863, plain.Loss);
        LossAssert.AllClose([-0.1704994306, 0.1212164854, 0.0492829452, 0, 0, 0, 0.0226392504, -0.4773607496, 0.4547214993], plain.Gradient);
        LossAssert.Close(2.2022919764, weighted.Loss);
        LossAssert.AllClose([-0.1136662870, 0.0808109902, 0.0328552968, 0, 0, 0, 0.0301856672, -0.6364809995, 0.6062953323], weighted.Gradient);
    }

    [Fact]
    public void Soft_target_cross_entropy_matches_pytorch()
    {
        var result = SoftRows("cross_entropy", Logits, Soft);

        LossAssert.Close(1.8517103933, result.Loss);
        LossAssert.AllClose([-0.0136662870, 0.0141443236, -0.0004780365, 0.0053715116, 0.2526589369, -0.2580304484,
            0.0150928336, -0.1515738331, 0.1364809995], result.Gradient);
    }

    [Fact]
    public void Kl_div_on_log_softmax_matches_all_three_reductions()
    {
        double[][] logProbabilities = Logits.Select(LogSoftmax).ToArray();

        LossAssert.Close(3.4211335871, SoftRows("kl_div", logProbabilities, Soft, reduction: Reduction.Sum).Loss);
        var batchMean = SoftRows("kl_div", logProbabilities, Soft);
        LossAssert.Close(1.1403778624, batchMean.Loss);
        LossAssert.Close(0.3801259541, SoftRows("kl_div", logProbabilities, Soft, reduction: Reduction.Mean).Loss);
        LossAssert.AllClose(Soft.SelectMany(r => r).Select(q => -q / 3).ToArray(), batchMean.Gradient, floor: 1e-3);
    }

    [Fact]
    public void Kl_div_trained_on_logits_has_the_soft_cross_entropy_gradient()
    {
        var loss = CombinedLoss.Bind([new LossTermSpec("kl_div")], new LossBinding(TargetLayout.Elementwise, 3, OnLogits: true));

        var result = Run(loss, new LossInput(F(Logits.SelectMany(r => r).ToArray()), F(Soft.SelectMany(r => r).ToArray()), 3, 3));

        LossAssert.Close(1.1403778624, result.Loss);
        LossAssert.AllClose([-0.0136662870, 0.0141443236, -0.0004780365, 0.0053715116, 0.2526589369, -0.2580304484,
            0.0150928336, -0.1515738331, 0.1364809995], result.Gradient);
    }

    [Fact]
    public void Nll_on_log_softmax_equals_cross_entropy()
    {
        var result = Rows("nll", Logits.Select(LogSoftmax).ToArray(), Classes);

        LossAssert.Close(2.3883770599, result.Loss);
        LossAssert.AllClose([-1.0 / 3, 0, 0, 0, 0, -1.0 / 3, 0, -1.0 / 3, 0], result.Gradient);
    }

    [Fact]
    public void Multi_margin_matches_pytorch_for_both_exponents_and_weights()
    {
        var p1 = Rows("multi_margin", Logits, Classes);
        var p2 = Rows("multi_margin", Logits, Classes, P(("p", 2.0)));
        var weighted = Rows("multi_margin", Logits, Classes, P(("weight", ClassWeights)));

        LossAssert.Close(1.3333333333, p1.Loss);
        LossAssert.AllClose([0, 0, 0, 1.0 / 9, 1.0 / 9, -2.0 / 9, 1.0 / 9, -2.0 / 9, 1.0 / 9], p1.Gradient);
        LossAssert.Close(4.8333333333, p2.Loss);
        LossAssert.AllClose([0, 0, 0, 0.5555555556, 1.0, -1.5555555556, 0.2222222222, -1.1111111111, 0.8888888889],
            p2.Gradient);
        LossAssert.Close(1.5, weighted.Loss);
    }

    private static double[] LogSoftmax(double[] row)
    {
        double max = row.Max();
        double lse = Math.Log(row.Sum(v => Math.Exp(v - max))) + max;
        return row.Select(v => v - lse).ToArray();
    }
}
