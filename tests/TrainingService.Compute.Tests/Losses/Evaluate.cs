using TrainingService.Compute.Losses;

namespace TrainingService.Compute.Tests.Losses;

/// <summary>Binds and evaluates losses on the shared test device, as the API does.</summary>
internal static class Evaluate
{
    public static LossResult Flat(string name, double[] x, double[] y, Dictionary<string, object?>? parameters = null,
        Reduction? reduction = null, double[]? weights = null, double[]? variance = null)
    {
        var loss = CombinedLoss.Bind([new LossTermSpec(name, parameters)], new LossBinding(TargetLayout.Elementwise, 1, false));
        return Run(loss, new LossInput(F(x), F(y), x.Length, 1, weights is null ? null : F(weights), variance is null ? null : F(variance)), reduction);
    }

    public static LossResult Rows(string name, double[][] x, double[] classIndices, Dictionary<string, object?>? parameters = null,
        Reduction? reduction = null, double[]? classWeights = null)
    {
        int classes = x[0].Length;
        var loss = CombinedLoss.Bind([new LossTermSpec(name, parameters)],
            new LossBinding(TargetLayout.ClassIndex, classes, false, classWeights));
        return Run(loss, new LossInput(F(x.SelectMany(r => r).ToArray()), F(classIndices), x.Length, classes), reduction);
    }

    public static LossResult SoftRows(string name, double[][] x, double[][] targets, Dictionary<string, object?>? parameters = null,
        Reduction? reduction = null)
    {
        int classes = x[0].Length;
        var loss = CombinedLoss.Bind([new LossTermSpec(name, parameters)], new LossBinding(TargetLayout.Elementwise, classes, false));
        return Run(loss, new LossInput(F(x.SelectMany(r => r).ToArray()), F(targets.SelectMany(r => r).ToArray()), x.Length, classes), reduction);
    }

    public static LossResult Run(CombinedLoss loss, LossInput input, Reduction? reduction = null) =>
        LossEvaluator.EvaluateAsync(TestDevice.Instance, loss, input, reduction).GetAwaiter().GetResult();

    public static float[] F(double[] values) => Array.ConvertAll(values, v => (float)v);

    public static Dictionary<string, object?> P(params (string Name, object? Value)[] values) =>
        values.ToDictionary(v => v.Name, v => v.Value);
}
