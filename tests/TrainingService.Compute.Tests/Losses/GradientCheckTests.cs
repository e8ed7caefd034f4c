using TrainingService.Compute.Losses;
using static TrainingService.Compute.Tests.Losses.Evaluate;
using static TrainingService.Compute.Tests.Losses.ReferenceLosses;

namespace TrainingService.Compute.Tests.Losses;

/// <summary>
/// For every loss and parameter combination, on random inputs of several sizes (1, sizes not divisible by the
/// group size, and larger), the kernel's loss equals an independent host reference and its gradient equals
/// central finite differences of that reference, computed in double.
/// </summary>
public sealed class GradientCheckTests
{
    public sealed record Case(string Description, Func<Random, int, Setup> Build)
    {
        public override string ToString() => Description;
    }

    public sealed record Setup(CombinedLoss Loss, LossInput Input, Reduced Reference, Reduction? Reduction = null);

    private static readonly int[] FlatSizes = [1, 3, 7, 64, 1031];
    private static readonly int[] RowCounts = [1, 3, 7, 65];

    private static double[] Uniform(Random random, int n, double low, double high) =>
        Enumerable.Range(0, n).Select(_ => (double)(float)(low + (high - low) * random.NextDouble())).ToArray();

    private static double[] Labels(Random random, int n) => Enumerable.Range(0, n).Select(_ => (double)random.Next(2)).ToArray();

    private static Case Flat(string description, string name, Dictionary<string, object?>? parameters,
        Func<Random, int, (double[] X, double[] Y)> data, Func<double[], Reduced> reference, Reduction? reduction = null,
        double[]? classWeights = null) =>
        new(description, (random, n) =>
        {
            var (x, y) = data(random, n);
            var loss = CombinedLoss.Bind([new LossTermSpec(name, parameters)], new LossBinding(TargetLayout.Elementwise, 1, false, classWeights));
            return new Setup(loss, new LossInput(F(x), F(y), n, 1), reference(y), reduction);
        });

    private static (double[], double[]) Regression(Random random, int n) => (Uniform(random, n, -3, 3), Uniform(random, n, -3, 3));

    private static (double[], double[]) Binary(Random random, int n) => (Uniform(random, n, -4, 4), Labels(random, n));

    private static (double[], double[]) SoftBinary(Random random, int n) => (Uniform(random, n, -4, 4), Uniform(random, n, 0, 1));

    public static TheoryData<Case> ElementwiseCases => new()
    {
        Flat("mse", "mse", null, Regression, y => Elementwise((x, t) => (x - t) * (x - t), y)),
        Flat("mse, sum", "mse", null, Regression, y => Elementwise((x, t) => (x - t) * (x - t), y, sum: true), Reduction.Sum),
        Flat("l1", "l1", null, Regression, y => Elementwise((x, t) => Math.Abs(x - t), y)),
        Flat("huber δ=1", "huber", null, Regression, y => Elementwise((x, t) => Huber(x - t, 1), y)),
        Flat("huber δ=0.5", "huber", P(("delta", 0.5)), Regression, y => Elementwise((x, t) => Huber(x - t, 0.5), y)),
        Flat("smooth_l1 β=1", "smooth_l1", null, Regression, y => Elementwise((x, t) => SmoothL1(x - t, 1), y)),
        Flat("smooth_l1 β=0.3", "smooth_l1", P(("beta", 0.3)), Regression, y => Elementwise((x, t) => SmoothL1(x - t, 0.3), y)),
        Flat("smooth_l1 β=0 (l1)", "smooth_l1", P(("beta", 0.0)), Regression, y => Elementwise((x, t) => Math.Abs(x - t), y)),
        Flat("log_cosh", "log_cosh", null, Regression, y => Elementwise((x, t) => Math.Log(Math.Cosh(x - t)), y)),
        Flat("poisson_nll", "poisson_nll", null, (r, n) => (Uniform(r, n, -2, 2), Uniform(r, n, 0, 5)),
            y => Elementwise((x, t) => Math.Exp(x) - t * x, y)),
        Flat("poisson_nll rates, full", "poisson_nll", P(("log_input", false), ("full", true)), (r, n) => (Uniform(r, n, 0.5, 4), Uniform(r, n, 0, 5)),
            y => Elementwise((x, t) => x - t * Math.Log(x + 1e-8) + (t > 1 ? t * Math.Log(t) - t + 0.5 * Math.Log(2 * Math.PI * t) : 0), y)),
        Flat("gaussian_nll var=0.7, full", "gaussian_nll", P(("var", 0.7), ("full", true)), Regression,
            y => Elementwise((x, t) => 0.5 * (Math.Log(0.7) + (x - t) * (x - t) / 0.7) + 0.5 * Math.Log(2 * Math.PI), y)),
        Flat("bce", "bce", null, (r, n) => (Uniform(r, n, 0.02, 0.98), Uniform(r, n, 0, 1)), y => Elementwise(Bce, y)),
        Flat("bce_with_logits", "bce_with_logits", null, SoftBinary, y => Elementwise((x, t) => BceWithLogits(x, t, 1), y)),
        Flat("bce_with_logits pos_weight=3", "bce_with_logits", P(("pos_weight", 3.0)), Binary, y => Elementwise((x, t) => BceWithLogits(x, t, 3), y)),
        Flat("bce_with_logits class weights [0.5, 4]", "bce_with_logits", null, Binary,
            y => Elementwise((x, t) => (t * 4 + (1 - t) * 0.5) * BceWithLogits(x, t, 1), y), classWeights: [0.5, 4]),
        Flat("hinge 0/1", "hinge", null, Binary, y => Elementwise(Hinge, y)),
        Flat("hinge ±1", "hinge", null, (r, n) => (Uniform(r, n, -4, 4), Labels(r, n).Select(v => 2 * v - 1).ToArray()), y => Elementwise(Hinge, y)),
        Flat("squared_hinge", "squared_hinge", null, Binary, y => Elementwise((x, t) => Math.Pow(Hinge(x, t), 2), y)),
        Flat("focal α=.25 γ=2", "focal", null, SoftBinary, y => Elementwise((x, t) => SigmoidFocal(x, t, 0.25, 2), y)),
        Flat("focal no α, γ=0.5", "focal", P(("alpha", -1.0), ("gamma", 0.5)), SoftBinary, y => Elementwise((x, t) => SigmoidFocal(x, t, -1, 0.5), y)),
        Flat("focal γ=0 is α-weighted bce", "focal", P(("alpha", 0.7), ("gamma", 0.0)), Binary, y => Elementwise((x, t) => SigmoidFocal(x, t, 0.7, 0), y)),
        new("mse with per-element weights", (random, n) =>
        {
            var (x, y) = Regression(random, n);
            var w = Uniform(random, n, 0, 2);
            var loss = CombinedLoss.Bind([new LossTermSpec("mse")], new LossBinding(TargetLayout.Elementwise, 1, false));
            return new Setup(loss, new LossInput(F(x), F(y), n, 1, F(w)), Elementwise((a, t) => (a - t) * (a - t), y, weights: w));
        }),
        new("gaussian_nll per-element variance", (random, n) =>
        {
            var (x, y) = Regression(random, n);
            var v = Uniform(random, n, 0.1, 3);
            var loss = CombinedLoss.Bind([new LossTermSpec("gaussian_nll")], new LossBinding(TargetLayout.Elementwise, 1, false));
            return new Setup(loss, new LossInput(F(x), F(y), n, 1, Variance: F(v)),
                xs => Enumerable.Range(0, xs.Length).Sum(i => 0.5 * (Math.Log(v[i]) + (xs[i] - y[i]) * (xs[i] - y[i]) / v[i])) / xs.Length);
        }),
        new("huber + 0.5 l1 + 0.25 log_cosh", (random, n) =>
        {
            var (x, y) = Regression(random, n);
            var loss = CombinedLoss.Bind([new LossTermSpec("huber"), new LossTermSpec("l1", Weight: 0.5), new LossTermSpec("log_cosh", Weight: 0.25)],
                new LossBinding(TargetLayout.Elementwise, 1, false));
            var h = Elementwise((a, t) => Huber(a - t, 1), y);
            var l = Elementwise((a, t) => Math.Abs(a - t), y);
            var c = Elementwise((a, t) => Math.Log(Math.Cosh(a - t)), y);
            return new Setup(loss, new LossInput(F(x), F(y), n, 1), xs => h(xs) + 0.5 * l(xs) + 0.25 * c(xs));
        }),
        new("bce trained on logits (sigmoid first)", (random, n) =>
        {
            var (x, y) = SoftBinary(random, n);
            var loss = CombinedLoss.Bind([new LossTermSpec("bce")], new LossBinding(TargetLayout.Elementwise, 1, OnLogits: true));
            return new Setup(loss, new LossInput(F(x), F(y), n, 1), Elementwise((a, t) => Bce(Sigmoid(a), t), y));
        }),
    };

    [Theory]
    [MemberData(nameof(ElementwiseCases))]
    public void Elementwise_gradient_matches_finite_differences(Case @case)
    {
        foreach (int n in FlatSizes)
        {
            Check(@case.Build(new Random(n), n), n);
        }
    }

    private static Case Rows(string description, Func<Random, int, int, Setup> build, params int[] classCounts) =>
        new(description, (random, rows) => build(random, rows, classCounts[rows % classCounts.Length]));

    private static double[] Indices(Random random, int rows, int classes) =>
        Enumerable.Range(0, rows).Select(_ => (double)random.Next(classes)).ToArray();

    private static double[] Distributions(Random random, int rows, int classes)
    {
        var q = Uniform(random, rows * classes, 0.01, 1);
        for (int r = 0; r < rows; r++)
        {
            double sum = 0;
            for (int c = 0; c < classes; c++)
            {
                sum += q[r * classes + c];
            }
            for (int c = 0; c < classes; c++)
            {
                q[r * classes + c] /= sum;
            }
        }
        return q;
    }

    private static Setup IndexSetup(string name, Dictionary<string, object?>? parameters, Random random, int rows, int classes,
        Func<double[], Reduced> reference, double[]? classWeights = null, bool onLogits = false, double[]? targets = null)
    {
        var x = Uniform(random, rows * classes, -3, 3);
        targets ??= Indices(random, rows, classes);
        var loss = CombinedLoss.Bind([new LossTermSpec(name, parameters)], new LossBinding(TargetLayout.ClassIndex, classes, onLogits, classWeights));
        return new Setup(loss, new LossInput(F(x), F(targets), rows, classes), reference(targets));
    }

    private static double[] Weights(int classes) => Enumerable.Range(0, classes).Select(c => 0.5 + c % 3).ToArray();

    public static TheoryData<Case> RowCases => new()
    {
        Rows("cross_entropy", (r, n, c) => IndexSetup("cross_entropy", null, r, n, c, t => CrossEntropy(t, c, null, 0)), 3, 2, 10),
        Rows("cross_entropy weighted", (r, n, c) => IndexSetup("cross_entropy", null, r, n, c, t => CrossEntropy(t, c, Weights(c), 0), Weights(c)), 3, 10),
        Rows("cross_entropy label_smoothing 0.2", (r, n, c) => IndexSetup("cross_entropy", P(("label_smoothing", 0.2)), r, n, c, t => CrossEntropy(t, c, null, 0.2)), 4, 10),
        Rows("cross_entropy weighted + smoothing", (r, n, c) => IndexSetup("cross_entropy", P(("label_smoothing", 0.1)), r, n, c,
            t => CrossEntropy(t, c, Weights(c), 0.1), Weights(c)), 3, 10),
        Rows("cross_entropy sum", (r, n, c) => IndexSetup("cross_entropy", null, r, n, c, t => CrossEntropy(t, c, null, 0, sum: true)) with { Reduction = Reduction.Sum }, 3),
        Rows("cross_entropy with ignored rows", (r, n, c) =>
        {
            var targets = Indices(r, n, c);
            for (int i = 1; i < n; i += 3)
            {
                targets[i] = -1;
            }
            return IndexSetup("cross_entropy", P(("ignore_index", -1.0)), r, n, c, t => CrossEntropy(t, c, null, 0, ignoreIndex: -1), targets: targets);
        }, 3, 5),
        Rows("cross_entropy probability targets", (r, n, c) =>
        {
            var x = Uniform(r, n * c, -3, 3);
            var q = Distributions(r, n, c);
            var loss = CombinedLoss.Bind([new LossTermSpec("cross_entropy", P(("label_smoothing", 0.1)))],
                new LossBinding(TargetLayout.Elementwise, c, false, Weights(c)));
            return new Setup(loss, new LossInput(F(x), F(q), n, c), SoftCrossEntropy(q.Select(v => (double)(float)v).ToArray(), c, Weights(c), 0.1));
        }, 3, 10),
        Rows("nll", (r, n, c) =>
        {
            var x = Uniform(r, n * c, -5, -0.01);
            var t = Indices(r, n, c);
            var loss = CombinedLoss.Bind([new LossTermSpec("nll")], new LossBinding(TargetLayout.ClassIndex, c, false, Weights(c)));
            return new Setup(loss, new LossInput(F(x), F(t), n, c), Nll(t, c, Weights(c)));
        }, 3, 10),
        Rows("nll trained on logits (log_softmax first)", (r, n, c) => IndexSetup("nll", null, r, n, c, t => CrossEntropy(t, c, null, 0), onLogits: true), 3),
        Rows("multi_margin p=1", (r, n, c) => IndexSetup("multi_margin", null, r, n, c, t => MultiMargin(t, c, 1, 1, null)), 3, 10),
        Rows("multi_margin p=2 margin 0.5 weighted", (r, n, c) => IndexSetup("multi_margin", P(("p", 2.0), ("margin", 0.5)), r, n, c,
            t => MultiMargin(t, c, 2, 0.5, Weights(c)), Weights(c)), 3, 10),
        Rows("softmax focal γ=2 α=0.25", (r, n, c) => IndexSetup("focal", null, r, n, c, t => SoftmaxFocal(t, c, Enumerable.Repeat(0.25, c).ToArray(), 2)), 3, 10),
        Rows("softmax focal γ=0.5 per-class α", (r, n, c) => IndexSetup("focal", P(("alpha", Weights(c).Select(w => w / 3).ToArray()), ("gamma", 0.5)), r, n, c,
            t => SoftmaxFocal(t, c, Weights(c).Select(w => w / 3).ToArray(), 0.5)), 3, 10),
        Rows("kl_div trained on logits", (r, n, c) =>
        {
            var x = Uniform(r, n * c, -3, 3);
            var q = Distributions(r, n, c);
            var loss = CombinedLoss.Bind([new LossTermSpec("kl_div")], new LossBinding(TargetLayout.Elementwise, c, OnLogits: true));
            return new Setup(loss, new LossInput(F(x), F(q), n, c), KlOnLogits(q.Select(v => (double)(float)v).ToArray(), c));
        }, 3, 10),
        Rows("kl_div on log-probabilities, log_target", (r, n, c) =>
        {
            var x = Uniform(r, n * c, -4, -0.05);
            var t = Uniform(r, n * c, -4, -0.05);
            var loss = CombinedLoss.Bind([new LossTermSpec("kl_div", P(("log_target", true)))], new LossBinding(TargetLayout.Elementwise, c, false));
            return new Setup(loss, new LossInput(F(x), F(t), n, c), Elementwise((a, b) => Math.Exp(b) * (b - a), t, divisor: n));
        }, 3, 10),
        Rows("cross_entropy + 0.5 multi_margin", (r, n, c) =>
        {
            var x = Uniform(r, n * c, -3, 3);
            var t = Indices(r, n, c);
            var loss = CombinedLoss.Bind([new LossTermSpec("cross_entropy"), new LossTermSpec("multi_margin", Weight: 0.5)],
                new LossBinding(TargetLayout.ClassIndex, c, false));
            var ce = CrossEntropy(t, c, null, 0);
            var mm = MultiMargin(t, c, 1, 1, null);
            return new Setup(loss, new LossInput(F(x), F(t), n, c), xs => ce(xs) + 0.5 * mm(xs));
        }, 3, 10),
    };

    [Theory]
    [MemberData(nameof(RowCases))]
    public void Row_gradient_matches_finite_differences(Case @case)
    {
        foreach (int rows in RowCounts)
        {
            Check(@case.Build(new Random(rows), rows), rows);
        }
    }

    private static void Check(Setup setup, int size)
    {
        var result = Run(setup.Loss, setup.Input, setup.Reduction);
        double[] x = setup.Input.Predictions.Select(v => (double)v).ToArray();

        LossAssert.Close(setup.Reference(x), result.Loss, 1e-6, 1e-9, $"loss (size {size})");
        double[] numeric = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double h = 1e-6 * Math.Max(1, Math.Abs(x[i]));
            double saved = x[i];
            x[i] = saved + h;
            double up = setup.Reference(x);
            x[i] = saved - h;
            double down = setup.Reference(x);
            x[i] = saved;
            numeric[i] = (up - down) / (2 * h);
        }
        double largest = numeric.Max(Math.Abs);
        for (int i = 0; i < x.Length; i++)
        {
            double bound = 1e-4 * Math.Abs(numeric[i]) + 1e-5 * Math.Max(largest, 1e-3);
            Assert.True(Math.Abs(result.Gradient[i] - numeric[i]) <= bound,
                $"size {size}, gradient[{i}]: kernel {result.Gradient[i]:R}, finite difference {numeric[i]:R}");
        }
    }
}
