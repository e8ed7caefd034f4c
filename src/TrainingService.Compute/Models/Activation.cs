namespace TrainingService.Compute.Models;

/// <summary>Hidden-layer activations (PyTorch's definitions; GELU is the exact erf form).</summary>
public enum Activation
{
    /// <summary>No activation (output layers).</summary>
    Identity = 0,
    /// <summary>max(0, z).</summary>
    Relu = 1,
    /// <summary>tanh(z).</summary>
    Tanh = 2,
    /// <summary>1 / (1 + e^−z).</summary>
    Sigmoid = 3,
    /// <summary>z·Φ(z), Φ the standard normal CDF.</summary>
    Gelu = 4,
}

/// <summary>Activation functions and derivatives, usable inside kernels (float, like PyTorch's float32).</summary>
public static class ActivationMath
{
    private const float InvSqrt2 = 0.70710678118654752f;
    private const float InvSqrt2Pi = 0.39894228040143268f;

    /// <summary>f(z).</summary>
    public static float Apply(int activation, float z) => activation switch
    {
        1 => z > 0f ? z : 0f,
        2 => MathF.Tanh(z),
        3 => Sigmoid(z),
        4 => z * NormalCdf(z),
        _ => z,
    };

    /// <summary>f′(z).</summary>
    public static float Derivative(int activation, float z)
    {
        switch (activation)
        {
            case 1:
                return z > 0f ? 1f : 0f;
            case 2:
                float t = MathF.Tanh(z);
                return 1f - t * t;
            case 3:
                float s = Sigmoid(z);
                return s * (1f - s);
            case 4:
                return NormalCdf(z) + z * InvSqrt2Pi * MathF.Exp(-0.5f * z * z);
            default:
                return 1f;
        }
    }

    private static float Sigmoid(float z) => z >= 0f ? 1f / (1f + MathF.Exp(-z)) : MathF.Exp(z) / (1f + MathF.Exp(z));

    /// <summary>Φ(z) = ½·erfc(−z/√2).</summary>
    private static float NormalCdf(float z) => 0.5f * Erfc(-z * InvSqrt2);

    /// <summary>erfc(x) with fractional error below 1.2e−7 everywhere (Chebyshev fit, Numerical Recipes §6.2).</summary>
    private static float Erfc(float x)
    {
        float z = MathF.Abs(x);
        float t = 1f / (1f + 0.5f * z);
        float r = t * MathF.Exp(-z * z - 1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f
            + t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f
            + t * (-0.82215223f + t * 0.17087277f)))))))));
        return x >= 0f ? r : 2f - r;
    }
}
