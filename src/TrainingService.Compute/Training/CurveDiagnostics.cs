using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace TrainingService.Compute.Training;

/// <summary>One epoch of a loss curve, as far as the diagnoses read it.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="TrainLoss">Training loss, penalty included.</param>
/// <param name="ValLoss">Validation loss, penalty included, or null.</param>
/// <param name="RegularizationLoss">The penalty part (left out when comparing with the trivial model, which has none).</param>
/// <param name="GradientNorm">Mean gradient norm.</param>
public sealed record CurvePoint(int Epoch, double TrainLoss, double? ValLoss, double RegularizationLoss, double GradientNorm)
{
    /// <summary>The point of an epoch record.</summary>
    public static CurvePoint Of(EpochRecord record) =>
        new(record.Epoch, record.TrainLoss, record.ValLoss, record.RegularizationLoss, record.GradientNorm);
}

/// <summary>What a loss curve says, with the epochs it covers, the numbers behind it, a sentence and what to try.</summary>
/// <param name="Code">Stable: underfitting, worse_than_baseline, overfitting, learning_rate_too_high, diverged, plateau, noisy_validation.</param>
/// <param name="FromEpoch">First epoch of the range it covers.</param>
/// <param name="ToEpoch">Last epoch of that range.</param>
/// <param name="Numbers">The values the verdict rests on, by name.</param>
/// <param name="Message">One plain sentence.</param>
/// <param name="Suggestions">What to try, from the loss-function articles the service follows.</param>
public sealed record Diagnosis(string Code, int FromEpoch, int ToEpoch, IReadOnlyDictionary<string, double> Numbers, string Message,
    IReadOnlyList<string> Suggestions);

/// <summary>
/// The thresholds of <see cref="CurveDiagnostics"/>; every relative quantity is a fraction of the loss's own level, so they
/// hold for any loss scale. Documented in docs/diagnoses.md. The service binds them from its section <c>Diagnoses</c> and
/// validates the ranges at start.
/// </summary>
public sealed record DiagnosisThresholds
{
    /// <summary>No verdict against the trivial model before this many epochs.</summary>
    [Range(1, 1_000_000)]
    public int MinEpochs { get; init; } = 5;
    /// <summary>Underfitting: the training loss (last <see cref="Window"/> epochs' mean) beats the trivial model's by less than this fraction.</summary>
    [Range(0.0, 1.0)]
    public double UnderfitImprovement { get; init; } = 0.1;
    /// <summary>Epochs averaged to smooth a loss where one epoch's value would be noise (overfitting, underfitting).</summary>
    [Range(1, 1_000)]
    public int Window { get; init; } = 3;
    /// <summary>Overfitting: the recent validation loss is this fraction above its minimum ...</summary>
    [Range(0.0, 100.0)]
    public double OverfitRise { get; init; } = 0.1;
    /// <summary>... at least this many epochs after that minimum, while the training loss fell.</summary>
    [Range(1, 1_000_000)]
    public int OverfitEpochs { get; init; } = 3;
    /// <summary>A learning rate too high, early: within the first <see cref="EarlyEpochs"/>, the training loss rises this fraction above epoch 1's.</summary>
    [Range(0.0, 100.0)]
    public double EarlyRise { get; init; } = 0.1;
    /// <summary>The first epochs, for <see cref="EarlyRise"/>.</summary>
    [Range(2, 1_000)]
    public int EarlyEpochs { get; init; } = 5;
    /// <summary>Oscillation: over the last <see cref="OscillationEpochs"/>, at least this share of epoch-to-epoch changes flip sign ...</summary>
    [Range(0.0, 1.0)]
    public double OscillationFlips { get; init; } = 0.6;
    /// <summary>... with a mean change of at least this fraction of the loss's level.</summary>
    [Range(0.0, 100.0)]
    public double OscillationAmplitude { get; init; } = 0.05;
    /// <summary>The window of the oscillation and noise checks.</summary>
    [Range(4, 10_000)]
    public int OscillationEpochs { get; init; } = 10;
    /// <summary>Plateau: the best training loss of the last <see cref="PlateauEpochs"/> improves on the best before them by less than this fraction.</summary>
    [Range(0.0, 1.0)]
    public double PlateauImprovement { get; init; } = 1e-3;
    /// <summary>The plateau's length.</summary>
    [Range(2, 1_000_000)]
    public int PlateauEpochs { get; init; } = 10;
    /// <summary>Noisy validation: over the last <see cref="OscillationEpochs"/>, the validation loss's scatter about its linear trend is this fraction of its level ...</summary>
    [Range(0.0, 100.0)]
    public double NoiseLevel { get; init; } = 0.05;
    /// <summary>... and this many times the training loss's relative scatter.</summary>
    [Range(0.0, 1_000.0)]
    public double NoiseRatio { get; init; } = 3;
}

/// <summary>
/// Reads a loss curve the way the loss-function articles teach: underfitting, overfitting, a learning rate too high,
/// divergence, plateaus and a noisy validation split, and whether the model beats the trivial one. A pure function of the
/// curve so far: run after every epoch, it costs O(epochs).
/// </summary>
public static class CurveDiagnostics
{
    /// <summary>The diagnoses of <paramref name="curve"/> (epochs in order), against <paramref name="baseline"/> when known.</summary>
    public static IReadOnlyList<Diagnosis> Diagnose(IReadOnlyList<CurvePoint> curve, Baseline? baseline, DiagnosisThresholds thresholds)
    {
        var found = new List<Diagnosis>();
        if (curve.Count == 0)
        {
            return found;
        }
        if (Diverged(curve) is { } diverged)
        {
            found.Add(diverged);
            found.AddRange(EarlyRise(curve, thresholds) is { } rise ? [rise] : []);
            return found;
        }
        Add(found, EarlyRise(curve, thresholds) ?? Oscillation(curve, thresholds));
        Add(found, Underfitting(curve, baseline, thresholds));
        Add(found, WorseThanBaseline(curve, baseline, thresholds));
        Add(found, Overfitting(curve, thresholds));
        Add(found, Plateau(curve, thresholds));
        Add(found, NoisyValidation(curve, thresholds));
        return found;
    }

    private static void Add(List<Diagnosis> found, Diagnosis? diagnosis)
    {
        if (diagnosis is not null)
        {
            found.Add(diagnosis);
        }
    }

    private static Diagnosis? Diverged(IReadOnlyList<CurvePoint> curve)
    {
        int first = -1;
        for (int i = 0; i < curve.Count && first < 0; i++)
        {
            var p = curve[i];
            first = double.IsFinite(p.TrainLoss) && double.IsFinite(p.GradientNorm) && (p.ValLoss is not double v || double.IsFinite(v)) ? -1 : i;
        }
        if (first < 0)
        {
            return null;
        }
        int epoch = curve[first].Epoch;
        var numbers = new Dictionary<string, double> { ["epoch"] = epoch };
        if (first > 0)
        {
            numbers["lastFiniteTrainLoss"] = curve[first - 1].TrainLoss;
        }
        return new Diagnosis("diverged", epoch, curve[^1].Epoch, numbers,
            $"The loss or gradient became NaN or infinite in epoch {epoch}: training diverged.",
            ["Lower the learning rate (by 10x).", "Clip gradients (optimizer.gradientClipNorm).", "Standardize the features and check the targets' scale."]);
    }

    private static Diagnosis? EarlyRise(IReadOnlyList<CurvePoint> curve, DiagnosisThresholds t)
    {
        double first = curve[0].TrainLoss;
        for (int i = 1; i < Math.Min(t.EarlyEpochs, curve.Count); i++)
        {
            double loss = curve[i].TrainLoss;
            if (double.IsFinite(loss) && loss > first + t.EarlyRise * Math.Abs(first))
            {
                return TooHigh(curve[0].Epoch, curve[i].Epoch,
                    new() { ["firstTrainLoss"] = first, ["risenTrainLoss"] = loss, ["rise"] = Relative(loss - first, first) },
                    $"The training loss rose from {F(first)} in epoch {curve[0].Epoch} to {F(loss)} in epoch {curve[i].Epoch} " +
                    $"({Percent(Relative(loss - first, first))} up) instead of falling: the learning rate is likely too high.");
            }
        }
        return null;
    }

    private static Diagnosis? Oscillation(IReadOnlyList<CurvePoint> curve, DiagnosisThresholds t)
    {
        if (curve.Count < t.OscillationEpochs)
        {
            return null;
        }
        int start = curve.Count - t.OscillationEpochs, flips = 0;
        double change = 0, level = 0;
        for (int i = start + 1; i < curve.Count; i++)
        {
            double delta = curve[i].TrainLoss - curve[i - 1].TrainLoss;
            change += Math.Abs(delta);
            level += Math.Abs(curve[i].TrainLoss);
            if (i > start + 1 && Math.Sign(delta) * Math.Sign(curve[i - 1].TrainLoss - curve[i - 2].TrainLoss) < 0)
            {
                flips++;
            }
        }
        int changes = t.OscillationEpochs - 1;
        double flipShare = (double)flips / (changes - 1), amplitude = level > 0 ? change / level : 0;
        if (flipShare < t.OscillationFlips || amplitude < t.OscillationAmplitude)
        {
            return null;
        }
        return TooHigh(curve[start].Epoch, curve[^1].Epoch, new() { ["flipShare"] = flipShare, ["meanChange"] = amplitude },
            $"Over epochs {curve[start].Epoch}–{curve[^1].Epoch} the training loss went up and down ({Percent(flipShare)} of changes " +
            $"flipped direction, by {Percent(amplitude)} of its level on average): the learning rate is likely too high.");
    }

    private static Diagnosis TooHigh(int from, int to, Dictionary<string, double> numbers, string message) =>
        new("learning_rate_too_high", from, to, numbers, message,
            ["Lower the learning rate (by 3–10x).", "Use a schedule with warmup, or one that decays (cosine, step).", "Use a larger batch."]);

    private static Diagnosis? Underfitting(IReadOnlyList<CurvePoint> curve, Baseline? baseline, DiagnosisThresholds t)
    {
        if (baseline is null || curve.Count < t.MinEpochs || Math.Abs(baseline.TrainLoss) < 1e-12)
        {
            return null;
        }
        double recent = Mean(curve, Math.Max(0, curve.Count - t.Window), p => p.TrainLoss - p.RegularizationLoss);
        double improvement = (baseline.TrainLoss - recent) / Math.Abs(baseline.TrainLoss);
        if (improvement >= t.UnderfitImprovement)
        {
            return null;
        }
        return new Diagnosis("underfitting", curve[0].Epoch, curve[^1].Epoch,
            new Dictionary<string, double> { ["trainLoss"] = recent, ["baselineTrainLoss"] = baseline.TrainLoss, ["improvement"] = improvement },
            $"After {curve.Count} epochs the training loss ({F(recent)}) is " +
            (improvement >= 0 ? $"only {Percent(improvement)} below" : $"{Percent(-improvement)} above") +
            $" the trivial model's ({F(baseline.TrainLoss)}, predicting the {baseline.Model}): the model is underfitting.",
            ["Use a bigger model (more or wider hidden layers).", "Raise the learning rate.", "Train for more epochs.", "Lower the regularization."]);
    }

    private static Diagnosis? WorseThanBaseline(IReadOnlyList<CurvePoint> curve, Baseline? baseline, DiagnosisThresholds t)
    {
        if (baseline?.ValLoss is not double reference || curve.Count < t.MinEpochs)
        {
            return null;
        }
        int best = -1;
        for (int i = 0; i < curve.Count; i++)
        {
            if (curve[i].ValLoss is double v && (best < 0 || v - curve[i].RegularizationLoss < DataVal(curve[best])))
            {
                best = i;
            }
        }
        if (best < 0 || DataVal(curve[best]) < reference)
        {
            return null;
        }
        return new Diagnosis("worse_than_baseline", curve[0].Epoch, curve[^1].Epoch,
            new Dictionary<string, double> { ["bestValLoss"] = DataVal(curve[best]), ["bestEpoch"] = curve[best].Epoch, ["baselineValLoss"] = reference },
            $"The best validation loss ({F(DataVal(curve[best]))}, epoch {curve[best].Epoch}) never beat the trivial model's ({F(reference)}, " +
            $"predicting the {baseline.Model}): the model has learnt nothing that generalises.",
            ["Check that the features carry information about the target.", "Lower the regularization.", "Try another loss or a bigger model."]);
    }

    /// <summary>The validation loss without the epoch's penalty (the trivial model has none).</summary>
    private static double DataVal(CurvePoint p) => p.ValLoss!.Value - p.RegularizationLoss;

    private static Diagnosis? Overfitting(IReadOnlyList<CurvePoint> curve, DiagnosisThresholds t)
    {
        int best = -1;
        for (int i = 0; i < curve.Count; i++)
        {
            if (curve[i].ValLoss is double v && (best < 0 || v < curve[best].ValLoss!.Value))
            {
                best = i;
            }
        }
        if (best < 0 || curve.Count - 1 - best < t.OverfitEpochs)
        {
            return null;
        }
        double minimum = curve[best].ValLoss!.Value;
        double recent = Mean(curve, Math.Max(best + 1, curve.Count - t.Window), p => p.ValLoss ?? double.NaN);
        double rise = Relative(recent - minimum, minimum);
        double trainAtBest = curve[best].TrainLoss, trainNow = curve[^1].TrainLoss;
        if (!(rise > t.OverfitRise) || trainNow >= trainAtBest)
        {
            return null;
        }
        int from = curve[best].Epoch;
        return new Diagnosis("overfitting", from, curve[^1].Epoch,
            new Dictionary<string, double>
            {
                ["bestEpoch"] = from, ["minValLoss"] = minimum, ["recentValLoss"] = recent, ["rise"] = rise,
                ["trainLossAtBest"] = trainAtBest, ["trainLoss"] = trainNow,
            },
            $"The validation loss rose {Percent(rise)} from its minimum ({F(minimum)}, epoch {from}) while the training loss kept " +
            $"falling ({F(trainAtBest)} → {F(trainNow)}): the model is overfitting from epoch {from}.",
            [$"Stop early: earlyStopping with patience 5 would have ended this run at epoch {from + 5} instead of {curve[^1].Epoch}.",
             $"keep: \"best\" (the default) stores epoch {from}'s model.",
             "Add L2 regularization.", "Add dropout.", "Use a smaller model or more data."]);
    }

    private static Diagnosis? Plateau(IReadOnlyList<CurvePoint> curve, DiagnosisThresholds t)
    {
        if (curve.Count <= t.PlateauEpochs)
        {
            return null;
        }
        int start = curve.Count - t.PlateauEpochs;
        double before = double.PositiveInfinity, within = double.PositiveInfinity;
        for (int i = 0; i < curve.Count; i++)
        {
            if (i < start) before = Math.Min(before, curve[i].TrainLoss);
            else within = Math.Min(within, curve[i].TrainLoss);
        }
        double improvement = Relative(before - within, before);
        if (improvement >= t.PlateauImprovement)
        {
            return null;
        }
        return new Diagnosis("plateau", curve[start].Epoch, curve[^1].Epoch,
            new Dictionary<string, double> { ["bestBefore"] = before, ["bestWithin"] = within, ["improvement"] = improvement },
            $"The training loss has not improved by {Percent(t.PlateauImprovement)} or more in the last {t.PlateauEpochs} epochs " +
            $"(best {F(within)} against {F(before)} before): it has reached a plateau.",
            ["Step the learning rate down (schedule reduce_on_plateau or step).", "Stop here: early stopping saves the epochs.",
             "If the loss is still high, the model is too small (see underfitting)."]);
    }

    private static Diagnosis? NoisyValidation(IReadOnlyList<CurvePoint> curve, DiagnosisThresholds t)
    {
        int n = t.OscillationEpochs, start = curve.Count - n;
        if (start < 0 || curve[start].ValLoss is null)
        {
            return null;
        }
        double valNoise = RelativeScatter(curve, start, p => p.ValLoss ?? double.NaN);
        double trainNoise = RelativeScatter(curve, start, p => p.TrainLoss);
        if (!(valNoise >= t.NoiseLevel) || valNoise < t.NoiseRatio * trainNoise)
        {
            return null;
        }
        return new Diagnosis("noisy_validation", curve[start].Epoch, curve[^1].Epoch,
            new Dictionary<string, double> { ["valScatter"] = valNoise, ["trainScatter"] = trainNoise },
            $"Over epochs {curve[start].Epoch}–{curve[^1].Epoch} the validation loss scatters {Percent(valNoise)} of its level about its " +
            $"trend, against {Percent(trainNoise)} for the training loss: the validation split is too small to measure progress.",
            ["Use a bigger validation split (validation.fraction).", "Judge by a smoothed curve, and give early stopping more patience."]);
    }

    /// <summary>The residuals' standard deviation about the least-squares line through the window, over the mean's magnitude.</summary>
    private static double RelativeScatter(IReadOnlyList<CurvePoint> curve, int start, Func<CurvePoint, double> value)
    {
        int n = curve.Count - start;
        double meanX = (n - 1) / 2.0, meanY = Mean(curve, start, value), sxy = 0, sxx = 0;
        for (int i = 0; i < n; i++)
        {
            sxy += (i - meanX) * (value(curve[start + i]) - meanY);
            sxx += (i - meanX) * (i - meanX);
        }
        double slope = sxy / sxx, squares = 0;
        for (int i = 0; i < n; i++)
        {
            double residual = value(curve[start + i]) - (meanY + slope * (i - meanX));
            squares += residual * residual;
        }
        return Math.Abs(meanY) > 0 ? Math.Sqrt(squares / Math.Max(1, n - 2)) / Math.Abs(meanY) : 0;
    }

    private static double Mean(IReadOnlyList<CurvePoint> curve, int start, Func<CurvePoint, double> value)
    {
        double sum = 0;
        for (int i = start; i < curve.Count; i++)
        {
            sum += value(curve[i]);
        }
        return sum / (curve.Count - start);
    }

    /// <summary>A change as a fraction of a reference level (its magnitude, so negative losses work too).</summary>
    private static double Relative(double change, double reference) => change / Math.Max(Math.Abs(reference), 1e-12);

    private static string F(double value) => value.ToString("G4", CultureInfo.InvariantCulture);

    private static string Percent(double fraction) => (fraction * 100).ToString(Math.Abs(fraction) < 0.1 ? "0.#" : "0", CultureInfo.InvariantCulture) + "%";
}
