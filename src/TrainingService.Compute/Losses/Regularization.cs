namespace TrainingService.Compute.Losses;

/// <summary>How an L2 coefficient is read; the two libraries differ by a factor of 2.</summary>
public enum RegularizationConvention
{
    /// <summary>Keras: penalty l1·Σ|w| + l2·Σw², gradient l1·sgn(w) + 2·l2·w.</summary>
    Keras,
    /// <summary>PyTorch weight decay: penalty l1·Σ|w| + (l2/2)·Σw², gradient l1·sgn(w) + l2·w.</summary>
    PyTorch,
}

/// <summary>
/// L1/L2 penalties on the model's weights, added to the loss and its gradient each step. Biases are excluded unless
/// <see cref="IncludeBias"/> (PyTorch's weight decay includes them; Keras's kernel regularizers do not).
/// </summary>
/// <param name="L1">Coefficient of Σ|w| (≥ 0).</param>
/// <param name="L2">Coefficient of the squared-norm term (≥ 0), read by <paramref name="Convention"/>.</param>
/// <param name="Convention">Keras (default) or PyTorch weight-decay reading of <paramref name="L2"/>.</param>
/// <param name="IncludeBias">Penalise biases too.</param>
public sealed record Regularization(double L1, double L2,
    RegularizationConvention Convention = RegularizationConvention.Keras, bool IncludeBias = false)
{
    /// <summary>No penalty.</summary>
    public static Regularization None { get; } = new(0, 0);

    /// <summary>True when either coefficient is non-zero.</summary>
    public bool IsActive => L1 > 0 || L2 > 0;

    /// <summary>The coefficient c such that the L2 gradient is c·w (2·l2 for Keras, l2 for PyTorch).</summary>
    public double L2GradientFactor => Convention == RegularizationConvention.Keras ? 2.0 * L2 : L2;

    /// <summary>The penalty of the given weights, computed on the host in double (the trainer adds it to valLoss).</summary>
    public double Penalty(ReadOnlySpan<float> weights)
    {
        double abs = 0.0, squares = 0.0;
        foreach (var w in weights)
        {
            abs += Math.Abs(w);
            squares += (double)w * w;
        }
        return L1 * abs + 0.5 * L2GradientFactor * squares;
    }
}
