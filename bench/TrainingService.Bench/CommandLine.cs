using System.Globalization;

namespace TrainingService.Bench;

/// <summary>The benchmarks' options: <c>--name value</c> pairs after the command, each with a fallback.</summary>
internal static class CommandLine
{
    public static int Option(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>A comma-separated list, e.g. <c>--sizes 1000000,10000000</c>.</summary>
    public static int[] Options(string[] args, string name, int[] fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1].Split(',').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray() : fallback;
    }

}
