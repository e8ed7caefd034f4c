namespace TrainingService.Server.Sweeps;

/// <summary>
/// The random stream of one trial: SplitMix64 (Steele, Lea and Flood 2014) started from (seed, trial index). A sweep's
/// proposals must be the same in every process and on every .NET version, so neither <see cref="Random"/> (whose
/// seeded algorithm is not promised to stay) nor <see cref="HashCode"/> (randomised per process) is used. Each trial
/// owns its stream, so trial 7's draws do not depend on how many draws trials 0–6 made.
/// </summary>
internal struct TrialRandom
{
    private ulong _state;

    /// <summary>The stream of trial <paramref name="index"/> in a sweep seeded with <paramref name="seed"/>.</summary>
    public TrialRandom(int seed, int index)
    {
        // Distinct (seed, index) pairs start at distinct states; SplitMix64's output mix decorrelates neighbours.
        _state = ((ulong)(uint)seed << 32) | (uint)index;
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong NextBits()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1), with the 53 bits a double holds.</summary>
    public double NextDouble() => (NextBits() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform on [first, last], both included.</summary>
    public long NextInteger(long first, long last)
    {
        ulong count = (ulong)(last - first) + 1;
        // The high word of bits × count is uniform on [0, count) up to a bias of count / 2⁶⁴: far below what a sweep sees.
        return first + (long)Math.BigMul(NextBits(), count, out _);
    }

    /// <summary>A standard normal draw (Box–Muller; the second value is dropped so every draw costs the same).</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble(); // (0, 1]: log(0) is avoided
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}
