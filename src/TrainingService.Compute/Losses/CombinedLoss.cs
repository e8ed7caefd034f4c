namespace TrainingService.Compute.Losses;

/// <summary>One term of a loss specification: a catalogue name, its parameters and its weight.</summary>
/// <param name="Name">Loss name or alias.</param>
/// <param name="Parameters">Parameter values (double, bool or double[]), or null for defaults.</param>
/// <param name="Weight">Weight of the term (1 for a single loss).</param>
public sealed record LossTermSpec(string Name, IReadOnlyDictionary<string, object?>? Parameters = null, double Weight = 1.0);

/// <summary>
/// A loss made of weighted terms that fit the same output: L = Σ_t weight_t · L_t, each term reduced with its own
/// denominator, so ∂L/∂x = Σ_t weight_t · ∂L_t/∂x. A single loss is a combination of one term.
/// </summary>
public sealed class CombinedLoss
{
    private CombinedLoss(IReadOnlyList<LossTerm> terms, LossBinding binding)
    {
        Terms = terms;
        Binding = binding;
    }

    /// <summary>The bound terms.</summary>
    public IReadOnlyList<LossTerm> Terms { get; }

    /// <summary>The layout every term is bound to.</summary>
    public LossBinding Binding { get; }

    /// <summary>The tasks every term fits.</summary>
    public IReadOnlyList<LossTask> Tasks => Terms.Skip(1)
        .Aggregate(Terms[0].Definition.Tasks.AsEnumerable(), (tasks, t) => tasks.Intersect(t.Definition.Tasks))
        .ToList();

    /// <summary>Where a term's errors point: <c>loss</c> when it is the only term, else <c>loss.terms[i]</c>.</summary>
    public static string TermField(int terms, int index, string fieldPrefix = "loss") =>
        terms == 1 ? fieldPrefix : $"{fieldPrefix}.terms[{index}]";

    /// <summary>Binds every term to <paramref name="binding"/>.</summary>
    /// <param name="specs">The terms; at least one.</param>
    /// <param name="binding">Shared layout and outputs.</param>
    /// <param name="fieldPrefix">Prefix for error fields: <c>loss</c> for one term, <c>loss.terms[i]</c> otherwise.</param>
    public static CombinedLoss Bind(IReadOnlyList<LossTermSpec> specs, LossBinding binding, string fieldPrefix = "loss")
    {
        if (specs.Count == 0)
        {
            throw new LossSpecException("loss.empty", $"{fieldPrefix}.terms", "A combined loss needs at least one term.");
        }
        if (binding.ClassWeights?.Any(w => !double.IsFinite(w) || w < 0) == true)
        {
            throw new LossSpecException("loss.parameter_out_of_range", "classWeights", "Class weights must be finite numbers ≥ 0.");
        }
        var terms = new List<LossTerm>(specs.Count);
        for (int i = 0; i < specs.Count; i++)
        {
            var spec = specs[i];
            string prefix = TermField(specs.Count, i, fieldPrefix);
            if (!double.IsFinite(spec.Weight) || spec.Weight < 0)
            {
                throw new LossSpecException("loss.parameter_out_of_range", $"{prefix}.weight",
                    $"A term's weight must be a finite number ≥ 0; got {spec.Weight}.");
            }
            var definition = LossCatalog.Find(spec.Name, $"{prefix}.name");
            terms.Add(definition.Bind(new LossArguments(spec.Parameters, prefix), binding, spec.Weight));
        }
        var combined = new CombinedLoss(terms, binding);
        if (combined.Tasks.Count == 0)
        {
            throw new LossSpecException("loss.incompatible_terms", $"{fieldPrefix}.terms",
                "The terms do not fit the same kind of output: " +
                string.Join("; ", terms.Select(t => $"{t.Definition.Name} fits {string.Join("/", t.Definition.Tasks)}")) + ".");
        }
        return combined;
    }

    /// <summary>Resolves the reduction: null means the first term's default; batchmean only for kl_div.</summary>
    public Reduction ResolveReduction(Reduction? requested)
    {
        var reduction = requested ?? Terms[0].Definition.DefaultReduction;
        if (reduction == Reduction.BatchMean)
        {
            var other = Terms.FirstOrDefault(t => t.Definition.DefaultReduction != Reduction.BatchMean);
            if (other is not null && requested is not null)
            {
                throw new LossSpecException("loss.invalid_reduction", "reduction",
                    $"Reduction 'batchmean' is defined for kl_div only, not for '{other.Definition.Name}'.");
            }
        }
        if (reduction == Reduction.None && Terms.Select(t => t.IsRowLoss).Distinct().Count() > 1)
        {
            throw new LossSpecException("loss.invalid_reduction", "reduction",
                "Reduction 'none' needs every term to give one value per element or every term one value per row.");
        }
        return reduction;
    }

    /// <summary>
    /// The reduction applied to one term: the one asked for, or when none was asked for, the term's own default, so
    /// kl_div keeps its batchmean beside other terms (as in training).
    /// </summary>
    public static Reduction TermReduction(LossTerm term, Reduction? requested) => requested ?? term.Definition.DefaultReduction;
}
