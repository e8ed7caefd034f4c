using System.Text.Json.Nodes;

namespace TrainingService.Server.Sweeps;

/// <summary>
/// Picks each trial's parameters. Every method is a pure function of (method, spaces, seed, trial index, history), so a
/// scheduler that restarts mid-sweep proposes the very same trial again, and a sweep can be replayed from its seed.
/// </summary>
public static class SweepSampler
{
    /// <summary>Trials drawn at random before TPE has enough history to model: Optuna's default.</summary>
    public const int DefaultStartupTrials = 10;

    /// <summary>
    /// The assignment of trial <paramref name="index"/> (0-based), or null when a grid is exhausted.
    /// <list type="bullet">
    /// <item>Grid: the index decoded in mixed radix over the spaces, the last space varying fastest (nested loops).
    /// Only lists and int_uniform ranges can be gridded (see <see cref="GridSize"/>).</item>
    /// <item>Random: independent draws; log_uniform is uniform in log space, int_uniform includes both ends.</item>
    /// <item>Tpe: random (identical to Random's draws) while <paramref name="index"/> or the number of trials with an
    /// objective is below <paramref name="startupTrials"/>, then <see cref="TreeParzen"/>.</item>
    /// </list>
    /// </summary>
    public static Assignment? Propose(SweepMethod method, IReadOnlyList<ParameterSpace> spaces, int seed, int index,
        IReadOnlyList<ObservedTrial> history, int startupTrials = DefaultStartupTrials)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        Check(spaces);
        if (method == SweepMethod.Grid)
        {
            return GridPoint(spaces, index);
        }
        var random = new TrialRandom(seed, index);
        // TPE needs at least one good and one bad trial to compare, hence at least two.
        int startup = Math.Max(2, startupTrials);
        int observed = history.Count(t => t.Objective is { } o && double.IsFinite(o));
        if (method == SweepMethod.Random || index < startup || observed < startup)
        {
            return new Assignment(spaces.Select(s => Pair(s.Path, Draw(s, ref random))).ToList());
        }
        return TreeParzen.Propose(spaces, history, ref random);
    }

    /// <summary>
    /// The number of grid points: the product of the list lengths, an int_uniform range counting its integers; null
    /// when a space cannot be gridded (a continuous range) or the product overflows.
    /// </summary>
    public static long? GridSize(IReadOnlyList<ParameterSpace> spaces)
    {
        long size = 1;
        foreach (var space in spaces)
        {
            if (Radix(space) is not { } radix)
            {
                return null;
            }
            try
            {
                size = checked(size * radix);
            }
            catch (OverflowException)
            {
                return null;
            }
        }
        return size;
    }

    /// <summary>One independent random draw from <paramref name="space"/>.</summary>
    internal static JsonNode? Draw(ParameterSpace space, ref TrialRandom random) => space switch
    {
        ChoiceSpace choice => choice.Values[(int)random.NextInteger(0, choice.Values.Count - 1)]?.DeepClone(),
        RangeSpace { Distribution: RangeDistribution.Uniform } range => JsonValue.Create(range.Min + random.NextDouble() * (range.Max - range.Min)),
        RangeSpace { Distribution: RangeDistribution.LogUniform } range =>
            JsonValue.Create(Math.Exp(Math.Log(range.Min) + random.NextDouble() * (Math.Log(range.Max) - Math.Log(range.Min)))),
        RangeSpace range => JsonValue.Create(random.NextInteger(range.IntegerBounds.First, range.IntegerBounds.Last)),
        _ => throw new ArgumentException($"Unknown parameter space {space.GetType().Name}.", nameof(space)),
    };

    /// <summary>
    /// Spaces with nothing to draw from are the request validation's to refuse, with a problem naming the field; reaching
    /// here with one is a bug, reported as such rather than as an index out of range.
    /// </summary>
    private static void Check(IReadOnlyList<ParameterSpace> spaces)
    {
        foreach (var space in spaces)
        {
            bool empty = space switch
            {
                ChoiceSpace choice => choice.Values.Count == 0,
                RangeSpace { Distribution: RangeDistribution.IntUniform } range => range.IntegerBounds.First > range.IntegerBounds.Last,
                RangeSpace range => !(range.Min <= range.Max) || (range.Distribution == RangeDistribution.LogUniform && range.Min <= 0),
                _ => false,
            };
            if (empty)
            {
                throw new ArgumentException($"The space of '{space.Path}' holds no value.", nameof(spaces));
            }
        }
    }

    internal static KeyValuePair<string, JsonNode?> Pair(string path, JsonNode? value) => new(path, value);

    private static Assignment? GridPoint(IReadOnlyList<ParameterSpace> spaces, int index)
    {
        if (GridSize(spaces) is not { } size)
        {
            throw new ArgumentException("A grid takes only lists and int_uniform ranges; check GridSize first.", nameof(spaces));
        }
        if (index >= size)
        {
            return null;
        }
        var values = new JsonNode?[spaces.Count];
        long rest = index;
        for (int i = spaces.Count - 1; i >= 0; i--)
        {
            long radix = Radix(spaces[i])!.Value;
            long digit = rest % radix;
            rest /= radix;
            values[i] = spaces[i] switch
            {
                ChoiceSpace choice => choice.Values[(int)digit]?.DeepClone(),
                RangeSpace range => JsonValue.Create(range.IntegerBounds.First + digit),
                _ => throw new ArgumentException($"Unknown parameter space {spaces[i].GetType().Name}.", nameof(spaces)),
            };
        }
        return new Assignment(spaces.Select((s, i) => Pair(s.Path, values[i])).ToList());
    }

    /// <summary>How many grid values a space has, or null for a continuous range.</summary>
    private static long? Radix(ParameterSpace space) => space switch
    {
        ChoiceSpace choice => choice.Values.Count,
        RangeSpace { Distribution: RangeDistribution.IntUniform } range => Math.Max(0, range.IntegerBounds.Last - range.IntegerBounds.First + 1),
        _ => null,
    };
}
