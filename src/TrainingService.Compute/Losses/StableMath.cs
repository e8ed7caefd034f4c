namespace TrainingService.Compute.Losses;

/// <summary>Numerically stable scalar helpers usable inside kernels (double precision).</summary>
public static class StableMath
{
    /// <summary>log 2.</summary>
    public const double Ln2 = 0.69314718055994530942;

    /// <summary>σ(x) = 1/(1 + e⁻ˣ), computed without overflow for either sign.</summary>
    public static double Sigmoid(double x)
    {
        if (x >= 0.0)
        {
            return 1.0 / (1.0 + Math.Exp(-x));
        }
        double e = Math.Exp(x);
        return e / (1.0 + e);
    }

    /// <summary>σ(x), and log σ(x) = min(x, 0) − log1p(e^−|x|) in <paramref name="logSigmoid"/>, from one exponential.</summary>
    public static double SigmoidWithLog(double x, out double logSigmoid)
    {
        double e = Math.Exp(-Math.Abs(x));
        logSigmoid = Math.Min(x, 0.0) - Log1p(e);
        return x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    }

    /// <summary>softplus(x) = log(1 + eˣ) = max(x, 0) + log1p(e^−|x|).</summary>
    public static double Softplus(double x) => Math.Max(x, 0.0) + Log1p(Math.Exp(-Math.Abs(x)));

    /// <summary>log(1 + x), accurate for small |x| (ILGPU maps no log1p intrinsic).</summary>
    public static double Log1p(double x)
    {
        // Classic correction: u = 1 + x rounded; log(u) · x / (u − 1) cancels the rounding of u.
        double u = 1.0 + x;
        if (u == 1.0)
        {
            return x;
        }
        return Math.Log(u) * x / (u - 1.0);
    }

    /// <summary>xʸ for x ≥ 0 with 0⁰ = 1 (as torch.pow).</summary>
    public static double Pow(double x, double y)
    {
        if (y == 0.0)
        {
            return 1.0;
        }
        if (y == 1.0)
        {
            return x;
        }
        if (y == 2.0)
        {
            return x * x;
        }
        return Math.Pow(x, y);
    }
}
