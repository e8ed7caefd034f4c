namespace TrainingService.Compute.Losses;

/// <summary>
/// Every loss the service offers, with PyTorch's defaults unless noted. Combined losses are weighted lists
/// of these (<see cref="CombinedLoss"/>); L1/L2 penalties are in <see cref="Regularization"/>.
/// </summary>
public static class LossCatalog
{
    private static readonly ParameterDefinition IgnoreIndexParameter = new("ignore_index", ParameterType.Integer, -100, null,
        "Rows whose target equals this are skipped (class-index targets only).");

    private static readonly ParameterDefinition LabelSmoothingParameter = new("label_smoothing", ParameterType.Number, 0.0, "[0, 1)",
        "ε: targets become (1 − ε)·target + ε/C.") { Accepts = v => v is >= 0 and < 1 };

    /// <summary>All entries, in display order.</summary>
    public static IReadOnlyList<LossDefinition> All { get; } =
    [
        new("mse", ["mean_squared_error"], [LossTask.Regression], "real values", InputSpace.Values, [],
            "ℓ = (x − y)²; ∂ℓ/∂x = 2(x − y)", "number of elements", Reduction.Mean, null,
            (d, c) => Elementwise(d, c, new MseLoss(), Domain.Finite)),

        new("l1", ["mae", "mean_absolute_error"], [LossTask.Regression], "real values", InputSpace.Values, [],
            "ℓ = |x − y|; ∂ℓ/∂x = sgn(x − y)", "number of elements", Reduction.Mean,
            "Gradient 0 at x = y (PyTorch and TensorFlow; JAX's abs gives 1).",
            (d, c) => Elementwise(d, c, new L1Loss(), Domain.Finite)),

        new("huber", [], [LossTask.Regression], "real values", InputSpace.Values,
            [new("delta", ParameterType.Number, 1.0, "(0, ∞)", "Where the quadratic part ends.") { Accepts = v => v > 0 }],
            "ℓ = ½r² if |r| < δ else δ(|r| − ½δ), r = x − y; ∂ℓ/∂x = clamp(r, −δ, δ)", "number of elements", Reduction.Mean,
            "Huber(δ) = δ · smooth_l1(β = δ); the two agree only at δ = β = 1.",
            (d, c) => Elementwise(d, c, new HuberLoss(c.Number(d, "delta")), Domain.Finite)),

        new("smooth_l1", [], [LossTask.Regression], "real values", InputSpace.Values,
            [new("beta", ParameterType.Number, 1.0, "[0, ∞)", "Where the quadratic part ends; 0 gives l1.") { Accepts = v => v >= 0 }],
            "ℓ = ½r²/β if |r| < β else |r| − ½β; ∂ℓ/∂x = clamp(r/β, −1, 1)", "number of elements", Reduction.Mean, null,
            (d, c) => Elementwise(d, c, new SmoothL1Loss(c.Number(d, "beta")), Domain.Finite)),

        new("log_cosh", ["logcosh"], [LossTask.Regression], "real values", InputSpace.Values, [],
            "ℓ = log cosh(r) = r + softplus(−2r) − log 2; ∂ℓ/∂x = tanh(r)", "number of elements", Reduction.Mean,
            "Keras's LogCosh; PyTorch has none. The stable form never overflows.",
            (d, c) => Elementwise(d, c, new LogCoshLoss(), Domain.Finite)),

        new("poisson_nll", [], [LossTask.Regression], "non-negative counts", InputSpace.Values,
            [
                new("log_input", ParameterType.Boolean, true, null, "Predictions are log-rates (true) or rates."),
                new("full", ParameterType.Boolean, false, null, "Add Stirling's term y·log y − y + ½log(2πy) for y > 1."),
                new("eps", ParameterType.Number, 1e-8, "(0, ∞)", "Added inside log(x + eps) when log_input is false.") { Accepts = v => v > 0 },
            ],
            "log_input: ℓ = eˣ − y·x, ∂ℓ/∂x = eˣ − y; else ℓ = x − y·log(x + ε), ∂ℓ/∂x = 1 − y/(x + ε)",
            "number of elements", Reduction.Mean, null,
            (d, c) => Elementwise(d, c,
                new PoissonNllLoss(c.Boolean(d, "log_input"), c.Boolean(d, "full"), c.Number(d, "eps")), Domain.NonNegative)),

        new("gaussian_nll", [], [LossTask.Regression], "real values (variance per element, or the fixed 'var')", InputSpace.Values,
            [
                new("var", ParameterType.Number, 1.0, "(0, ∞)", "Fixed variance, used when no per-element variance is given.") { Accepts = v => v > 0 },
                new("full", ParameterType.Boolean, false, null, "Add the constant ½log 2π."),
                new("eps", ParameterType.Number, 1e-6, "(0, ∞)", "Variances are clamped to at least eps.") { Accepts = v => v > 0 },
            ],
            "v = max(var, ε); ℓ = ½(log v + (x − y)²/v); ∂ℓ/∂x = (x − y)/v", "number of elements", Reduction.Mean,
            "The clamp is straight-through as in PyTorch. Gradients with respect to the variance are not returned.",
            (d, c) => Elementwise(d, c,
                new GaussianNllLoss(c.Number(d, "var"), c.Boolean(d, "full"), c.Number(d, "eps")),
                Domain.Finite)),

        new("bce", ["binary_cross_entropy"], [LossTask.Binary], "labels in [0, 1]", InputSpace.Probabilities, [],
            "ℓ = −[y·max(log p, −100) + (1 − y)·max(log(1 − p), −100)]; ∂ℓ/∂p = (p − y)/max(p(1 − p), 1e−12)",
            "number of elements", Reduction.Mean,
            "PyTorch's clamps: the loss is at most 100 per element at p ∈ {0, 1} (Keras clips p to [1e−7, 1 − 1e−7] instead). " +
            "In training the model's logit goes through a sigmoid first; prefer bce_with_logits.",
            (d, c) => c.Binding.OnLogits
                ? Elementwise(d, c, new SigmoidInput<BceLoss>(new BceLoss()), Domain.UnitInterval)
                : Elementwise(d, c, new BceLoss(), Domain.UnitInterval, Domain.UnitInterval)),

        new("bce_with_logits", ["binary_cross_entropy_with_logits"], [LossTask.Binary], "labels in [0, 1]", InputSpace.Logits,
            [new("pos_weight", ParameterType.Number, 1.0, "(0, ∞)", "Weight of positive examples (#negatives / #positives balances).") { Accepts = v => v > 0 }],
            "l = 1 + (pw − 1)y; ℓ = (1 − y)x − l·logσ(x); ∂ℓ/∂x = l·σ(x) − pw·y", "number of elements", Reduction.Mean, null,
            (d, c) => Elementwise(d, c, new BceWithLogitsLoss(c.Number(d, "pos_weight")), Domain.UnitInterval)),

        new("hinge", [], [LossTask.Binary], "labels in {0, 1} or {−1, 1}", InputSpace.Values, [],
            "y' = ±1; ℓ = max(0, 1 − y'x); ∂ℓ/∂x = −y' where 1 − y'x > 0", "number of elements", Reduction.Mean,
            "Label 0 is read as −1 (Keras). At the margin (1 − y'x = 0) the gradient is 0 (strict >, as PyTorch's relu " +
            "and MultiMarginLoss; TensorFlow gives −y', JAX −y'/2).",
            (d, c) => Elementwise(d, c, new HingeLoss(), Domain.SignedLabel)),

        new("squared_hinge", [], [LossTask.Binary], "labels in {0, 1} or {−1, 1}", InputSpace.Values, [],
            "ℓ = max(0, 1 − y'x)²; ∂ℓ/∂x = −2y'·max(0, 1 − y'x)", "number of elements", Reduction.Mean,
            "Label 0 is read as −1. Smooth at the margin.",
            (d, c) => Elementwise(d, c, new SquaredHingeLoss(), Domain.SignedLabel)),

        new("focal", ["sigmoid_focal"], [LossTask.Binary, LossTask.Multiclass],
            "labels in [0, 1] (one output) or class indices (C outputs)", InputSpace.Logits,
            [
                new("alpha", ParameterType.NumberArray, null, "[0, 1] or −1",
                    "Binary: weight of positives (default 0.25; −1 disables). Multiclass: one α per class, or one for all (default 0.25).")
                    { Accepts = v => v is >= 0 and <= 1 or -1 },
                new("gamma", ParameterType.Number, 2.0, "[0, ∞)", "Focusing exponent.") { Accepts = v => v >= 0 },
            ],
            "binary (torchvision): ℓ = α_t·BCEWithLogits(x, y)·(1 − p_t)^γ; multiclass: ℓ = −α_y·(1 − p_y)^γ·log p_y, p = softmax(x)",
            "binary: number of elements; multiclass: number of rows", Reduction.Mean,
            "Binary follows torchvision's sigmoid_focal_loss (α applied; its own default reduction is 'none'). " +
            "Multiclass follows Keras's CategoricalFocalCrossentropy on logits, computed from log-softmax (Keras clips probabilities).",
            BindFocal),

        new("cross_entropy", ["categorical_cross_entropy", "ce"], [LossTask.Multiclass, LossTask.Distribution],
            "class indices (or ignore_index), or probability rows", InputSpace.Logits,
            [
                new("weight", ParameterType.NumberArray, null, "[0, ∞)", "Per-class weights (or use classWeights).") { Accepts = v => v >= 0 },
                LabelSmoothingParameter,
                IgnoreIndexParameter,
            ],
            "indices: ℓ = (1 − ε)·w[y]·(−lsm(x)_y) + (ε/C)·Σ_c w_c·(−lsm(x)_c); probabilities q: ℓ = −Σ_c w_c q_c lsm(x)_c",
            "indices: Σ w[y] over kept rows (PyTorch); probabilities: number of rows", Reduction.Mean,
            "With class weights the mean divides by the batch's Σ w[y] (PyTorch), not by B (Keras). Label smoothing with " +
            "weights reproduces PyTorch's form, which is not cross-entropy against the smoothed distribution.",
            BindCrossEntropy),

        new("nll", ["nll_loss"], [LossTask.Multiclass], "class indices (or ignore_index)", InputSpace.LogProbabilities,
            [
                new("weight", ParameterType.NumberArray, null, "[0, ∞)", "Per-class weights (or use classWeights).") { Accepts = v => v >= 0 },
                IgnoreIndexParameter,
            ],
            "ℓ = −w[y]·x_y; ∂ℓ/∂x_y = −w[y]", "Σ w[y] over kept rows", Reduction.Mean,
            "In training the model's outputs go through log_softmax first, which makes nll identical to cross_entropy.",
            BindNll),

        new("multi_margin", ["multiclass_hinge"], [LossTask.Multiclass], "class indices", InputSpace.Values,
            [
                new("p", ParameterType.Integer, 1, "{1, 2}", "Exponent.") { AllowedValues = new HashSet<double> { 1, 2 } },
                new("margin", ParameterType.Number, 1.0, "(0, ∞)", "Margin.") { Accepts = v => v > 0 },
                new("weight", ParameterType.NumberArray, null, "[0, ∞)", "Per-class weights (or use classWeights).") { Accepts = v => v >= 0 },
            ],
            "ℓ = (1/C)·Σ_{i≠y} w[y]·max(0, margin − x_y + x_i)^p", "number of rows", Reduction.Mean,
            "Weston–Watkins form of PyTorch's MultiMarginLoss; gradient 0 exactly at the margin.",
            (d, c) => RowIndexed(d, c, new MultiMarginLoss(c.Integer(d, "p"), c.Number(d, "margin")), MeanDenominator.Rows,
                c.Numbers(d, "weight"))),

        new("kl_div", ["kl_divergence", "kld"], [LossTask.Distribution], "probability rows (or log-probabilities with log_target)",
            InputSpace.LogProbabilities,
            [new("log_target", ParameterType.Boolean, false, null, "Targets are log-probabilities.")],
            "ℓ = p·(log p − x) (0 where p = 0), or eᵗ(t − x) with log_target; ∂ℓ/∂x = −p",
            "batchmean (default): number of rows; mean: number of elements", Reduction.BatchMean,
            "PyTorch's 'mean' divides by every element and is not the KL divergence; the default here is 'batchmean'. " +
            "In training the model's outputs go through log_softmax first.",
            BindKlDiv),
    ];

    private static readonly Dictionary<string, LossDefinition> ByName = All
        .SelectMany(d => d.Aliases.Prepend(d.Name).Select(n => (n, d)))
        .ToDictionary(p => p.n, p => p.d, StringComparer.OrdinalIgnoreCase);

    /// <summary>Finds a loss by name or alias (case-insensitive).</summary>
    public static bool TryFind(string name, out LossDefinition definition) => ByName.TryGetValue(name, out definition!);

    /// <summary>Finds a loss by name or alias, or throws <c>loss.unknown</c>.</summary>
    public static LossDefinition Find(string name, string field = "loss.name") =>
        TryFind(name, out var definition)
            ? definition
            : throw new LossSpecException("loss.unknown", field,
                $"Unknown loss '{name}'. Known losses: {string.Join(", ", All.Select(d => d.Name))}.");

    private static LossTerm Elementwise<TLoss>(LossDefinition d, BindContext c, TLoss loss, Domain targets,
        Domain predictions = Domain.Finite) where TLoss : struct, IPointwiseLoss
    {
        RequireLayout(d, c, TargetLayout.Elementwise);
        var classWeights = c.Binding.ClassWeights;
        if (classWeights is not null && (!d.Tasks.Contains(LossTask.Binary) || classWeights.Length != 2))
        {
            throw new LossSpecException("loss.class_weights_not_supported", "classWeights",
                $"Loss '{d.Name}' takes class weights only for two classes (binary labels).");
        }
        return new PointwiseTerm<TLoss>(d, c.Weight, c.Resolved, loss, MeanDenominator.Elements, targets, predictions)
        {
            ClassWeights = classWeights,
        };
    }

    private static LossTerm RowIndexed<TLoss>(LossDefinition d, BindContext c, TLoss loss, MeanDenominator denominator,
        double[]? classWeights, int? ignoreIndex = null) where TLoss : struct, IRowLoss
    {
        RequireLayout(d, c, TargetLayout.ClassIndex);
        return new RowTerm<TLoss>(d, c.Weight, c.Resolved, loss, denominator, Domain.ClassIndex, ignoreIndex)
        {
            ClassWeights = MergeClassWeights(d, c, classWeights),
        };
    }

    /// <summary>The loss's own <c>weight</c> parameter, or the binding's class weights; both at once is ambiguous.</summary>
    private static double[]? MergeClassWeights(LossDefinition d, BindContext c, double[]? own)
    {
        CheckClassWeights(d, c, own, "weight");
        CheckClassWeights(d, c, c.Binding.ClassWeights, "classWeights");
        if (own is not null && c.Binding.ClassWeights is not null)
        {
            throw new LossSpecException("loss.conflicting_class_weights", "classWeights",
                $"Loss '{d.Name}' got class weights twice (its 'weight' parameter and classWeights); give one.");
        }
        return own ?? c.Binding.ClassWeights;
    }

    private static LossTerm BindFocal(LossDefinition d, BindContext c)
    {
        double gamma = c.Number(d, "gamma");
        double[]? alpha = c.Numbers(d, "alpha");
        if (c.Binding.Layout == TargetLayout.Elementwise)
        {
            if (alpha is { Length: > 1 })
            {
                throw new LossSpecException("loss.invalid_parameter", "loss.alpha",
                    "Binary focal loss takes one alpha (a number); per-class alphas need class-index targets.");
            }
            return Elementwise(d, c, new SigmoidFocalLoss(alpha?[0] ?? 0.25, gamma), Domain.UnitInterval);
        }
        if (alpha is null or [_])
        {
            double single = alpha?[0] ?? 0.25;
            alpha = Enumerable.Repeat(single < 0 ? 1.0 : single, c.Binding.Classes).ToArray();
        }
        else if (alpha.Any(a => a < 0))
        {
            throw new LossSpecException("loss.parameter_out_of_range", "loss.alpha",
                "Per-class alphas must each be in [0, 1]; only a single alpha of −1 disables the weighting.");
        }
        CheckClassWeights(d, c, alpha, "alpha");
        // α_y and a class weight w_y both scale row y's loss: they combine as one per-class factor.
        var classWeights = c.Binding.ClassWeights;
        var factors = classWeights is null ? alpha : alpha.Select((a, i) => a * classWeights[i]).ToArray();
        RequireLayout(d, c, TargetLayout.ClassIndex);
        return new RowTerm<SoftmaxFocalLoss>(d, c.Weight, c.Resolved, new SoftmaxFocalLoss(gamma), MeanDenominator.Rows,
            Domain.ClassIndex) { ClassWeights = factors };
    }

    private static LossTerm BindCrossEntropy(LossDefinition d, BindContext c)
    {
        double[]? weight = c.Numbers(d, "weight");
        double smoothing = c.Number(d, "label_smoothing");
        int ignoreIndex = c.Integer(d, "ignore_index");
        if (c.Binding.Layout == TargetLayout.ClassIndex)
        {
            return RowIndexed(d, c, new CrossEntropyLoss(smoothing, ignoreIndex), MeanDenominator.TargetClassWeights, weight, ignoreIndex);
        }
        RequireClasses(d, c);
        return new RowTerm<SoftCrossEntropyLoss>(d, c.Weight, c.Resolved, new SoftCrossEntropyLoss(smoothing),
            MeanDenominator.Rows, Domain.ProbabilityRows) { ClassWeights = MergeClassWeights(d, c, weight) };
    }

    private static LossTerm BindNll(LossDefinition d, BindContext c)
    {
        double[]? weight = c.Numbers(d, "weight");
        int ignoreIndex = c.Integer(d, "ignore_index");
        return c.Binding.OnLogits
            ? RowIndexed(d, c, new CrossEntropyLoss(0.0, ignoreIndex), MeanDenominator.TargetClassWeights, weight, ignoreIndex)
            : RowIndexed(d, c, new NllLoss(ignoreIndex), MeanDenominator.TargetClassWeights, weight, ignoreIndex);
    }

    private static LossTerm BindKlDiv(LossDefinition d, BindContext c)
    {
        bool logTarget = c.Boolean(d, "log_target");
        RequireLayout(d, c, TargetLayout.Elementwise);
        if (c.Binding.OnLogits)
        {
            if (logTarget)
            {
                throw new LossSpecException("loss.invalid_parameter", "loss.log_target",
                    "Training with kl_div takes probability targets; log_target is for evaluating given log-probabilities.");
            }
            RequireClasses(d, c);
            return new RowTerm<KlDivOnLogitsLoss>(d, c.Weight, c.Resolved, new KlDivOnLogitsLoss(), MeanDenominator.Rows,
                Domain.ProbabilityRows);
        }
        var targets = logTarget ? Domain.Finite : c.Binding.Classes > 1 ? Domain.ProbabilityRows : Domain.UnitInterval;
        return new PointwiseTerm<KlDivLoss>(d, c.Weight, c.Resolved, new KlDivLoss(logTarget), MeanDenominator.Elements, targets);
    }

    private static void RequireLayout(LossDefinition d, BindContext c, TargetLayout layout)
    {
        if (c.Binding.Layout != layout)
        {
            string wanted = layout == TargetLayout.ClassIndex ? "one class index per row" : "one target per prediction";
            throw new LossSpecException("loss.shape_mismatch", "targets",
                $"Loss '{d.Name}' needs {wanted}; the targets given are laid out differently.");
        }
    }

    private static void RequireClasses(LossDefinition d, BindContext c)
    {
        if (c.Binding.Classes < 2)
        {
            throw new LossSpecException("loss.shape_mismatch", "predictions",
                $"Loss '{d.Name}' with probability targets needs rows of at least 2 outputs.");
        }
    }

    private static void CheckClassWeights(LossDefinition d, BindContext c, double[]? weights, string name)
    {
        if (weights is not null && weights.Length != c.Binding.Classes)
        {
            throw new LossSpecException("loss.shape_mismatch", $"loss.{name}",
                $"Loss '{d.Name}' got {weights.Length} class weights for {c.Binding.Classes} classes.");
        }
        if (weights?.Any(w => !double.IsFinite(w) || w < 0) == true)
        {
            throw new LossSpecException("loss.parameter_out_of_range", $"loss.{name}", $"Loss '{d.Name}': class weights must be finite numbers ≥ 0.");
        }
    }
}
