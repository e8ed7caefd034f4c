using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace TrainingService.Server.Infrastructure;

/// <summary>
/// The service's own traces and metrics, under one name ("TrainingService") that the OpenTelemetry setup subscribes to.
/// Names follow OpenTelemetry's conventions (dotted, base units: seconds, bytes), which the Prometheus exporter turns into
/// <c>trainingservice_epoch_duration_seconds</c> and the like. No instrument carries a per-job or per-tenant label: their
/// values are unbounded, and a job's own numbers are in its history.
/// </summary>
public static class Instruments
{
    public const string Name = "TrainingService";

    /// <summary>Spans of a job's life: submit, enqueue, a worker's attempt, each epoch.</summary>
    public static readonly ActivitySource Source = new(Name);

    public static readonly Meter Meter = new(Name);

    /// <summary>From a job's creation to the start of its first attempt, by device pool.</summary>
    public static readonly Histogram<double> QueueWait = Meter.CreateHistogram<double>("trainingservice.queue.wait", "s",
        "Time from submit to the start of a job's first attempt.");

    /// <summary>One epoch's wall time (training pass and evaluation).</summary>
    public static readonly Histogram<double> EpochDuration = Meter.CreateHistogram<double>("trainingservice.epoch.duration", "s",
        "Wall time of one training epoch, evaluation included.");

    /// <summary>Training rows processed; its rate is samples per second.</summary>
    public static readonly Counter<long> SamplesTrained = Meter.CreateCounter<long>("trainingservice.training.samples", "{sample}",
        "Training rows passed through the model (rate: samples per second).");

    /// <summary>Device time by phase: the training pass (forward, loss, backward, optimizer kernels) and the evaluation pass.</summary>
    public static readonly Histogram<double> ComputeDuration = Meter.CreateHistogram<double>("trainingservice.compute.duration", "s",
        "Time in the kernels of one epoch, by phase (train: forward, loss, backward and optimizer; evaluate: validation and metrics).");

    public static readonly Counter<long> UploadBytes = Meter.CreateCounter<long>("trainingservice.upload.bytes", "By",
        "Bytes of CSV uploads read.");

    public static readonly Histogram<double> UploadDuration = Meter.CreateHistogram<double>("trainingservice.upload.duration", "s",
        "Time to read, type and store one upload.");

    public static readonly UpDownCounter<long> OpenStreams = Meter.CreateUpDownCounter<long>("trainingservice.history.streams", "{stream}",
        "Open Server-Sent Events history streams.");

    public static readonly Counter<long> NotModified = Meter.CreateCounter<long>("trainingservice.polls.not_modified", "{response}",
        "Polls answered 304 Not Modified, by resource (history, other).");

    public static readonly Counter<long> JobsEnded = Meter.CreateCounter<long>("trainingservice.jobs.ended", "{job}",
        "Jobs that ended, by final status.");
}
