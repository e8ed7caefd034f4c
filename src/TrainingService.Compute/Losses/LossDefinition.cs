namespace TrainingService.Compute.Losses;

/// <summary>
/// A catalogue entry: documentation (what <c>GET /api/losses</c> shows) and the binder that turns parameter
/// values and a target layout into a <see cref="LossTerm"/>.
/// </summary>
public sealed class LossDefinition
{
    private readonly Func<LossDefinition, BindContext, LossTerm> _bind;

    internal LossDefinition(string name, IReadOnlyList<string> aliases, IReadOnlyList<LossTask> tasks, string targets,
        InputSpace inputSpace, IReadOnlyList<ParameterDefinition> parameters, string formula, string meanDenominator,
        Reduction defaultReduction, string? notes, Func<LossDefinition, BindContext, LossTerm> bind)
    {
        Name = name;
        Aliases = aliases;
        Tasks = tasks;
        Targets = targets;
        InputSpace = inputSpace;
        Parameters = parameters;
        Formula = formula;
        MeanDenominatorText = meanDenominator;
        DefaultReduction = defaultReduction;
        Notes = notes;
        _bind = bind;
    }

    /// <summary>API name, snake_case.</summary>
    public string Name { get; }
    /// <summary>Other accepted names.</summary>
    public IReadOnlyList<string> Aliases { get; }
    /// <summary>Tasks the loss fits.</summary>
    public IReadOnlyList<LossTask> Tasks { get; }
    /// <summary>What targets must be, in words.</summary>
    public string Targets { get; }
    /// <summary>What predictions must be when evaluated directly (in training the model's raw outputs are adapted).</summary>
    public InputSpace InputSpace { get; }
    /// <summary>Parameters with defaults and ranges.</summary>
    public IReadOnlyList<ParameterDefinition> Parameters { get; }
    /// <summary>The per-element (or per-row) formula.</summary>
    public string Formula { get; }
    /// <summary>What <c>mean</c> divides by, in words.</summary>
    public string MeanDenominatorText { get; }
    /// <summary>Reduction used when none is given.</summary>
    public Reduction DefaultReduction { get; }
    /// <summary>Conventions worth knowing (kinks, clamps, where libraries disagree).</summary>
    public string? Notes { get; }

    /// <summary>Binds this loss to parameter values and a target layout.</summary>
    /// <param name="arguments">Parameter values (unknown names are rejected).</param>
    /// <param name="binding">Layout, outputs per row, and whether inputs are model logits.</param>
    /// <param name="weight">Weight of the term in a combined loss.</param>
    public LossTerm Bind(LossArguments arguments, LossBinding binding, double weight = 1.0)
    {
        arguments.RejectUnknown(Name, Parameters);
        return _bind(this, new BindContext(arguments, binding, weight));
    }

    internal ParameterDefinition Parameter(string name) => Parameters.First(p => p.Name == name);
}

/// <summary>Everything a binder needs: arguments, layout and term weight, plus the values it resolved.</summary>
internal sealed class BindContext(LossArguments arguments, LossBinding binding, double weight)
{
    private readonly Dictionary<string, object?> _resolved = new();

    public LossBinding Binding { get; } = binding;
    public double Weight { get; } = weight;
    public IReadOnlyDictionary<string, object?> Resolved => _resolved;

    public double Number(LossDefinition d, string name) => Remember(name, arguments.Number(d.Parameter(name)));
    public int Integer(LossDefinition d, string name) => Remember(name, arguments.Integer(d.Parameter(name)));
    public bool Boolean(LossDefinition d, string name) => Remember(name, arguments.Boolean(d.Parameter(name)));
    public double[]? Numbers(LossDefinition d, string name) => Remember(name, arguments.Numbers(d.Parameter(name)));

    private T Remember<T>(string name, T value)
    {
        _resolved[name] = value;
        return value;
    }
}
