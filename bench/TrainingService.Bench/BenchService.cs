using TrainingService.ProcessHarness;

namespace TrainingService.Bench;

/// <summary>The service's executable as the benchmarks run it: Release build, warnings only, errors echoed, patient client.</summary>
internal static class BenchService
{
    /// <summary>The owner key every benchmark's service is configured with; <see cref="ServiceProcess.Client"/> sends it.</summary>
    public const string OwnerKey = "ts_00000000000000be_BenchOwnerKeyBenchOwnerKeyBenchOwnerKeyBenc";

    /// <summary>Starts <paramref name="role"/> on <paramref name="postgres"/> and waits until it serves.</summary>
    public static Task<ServiceProcess> StartAsync(string role, string postgres, IReadOnlyDictionary<string, string>? settings = null)
    {
        var all = new Dictionary<string, string>
        {
            ["Logging:LogLevel:Default"] = "Warning",
            ["Auth:OwnerKey"] = OwnerKey,
            // The pollers of bench.sh service make tens of thousands of requests a second with one key: measured, not throttled.
            ["Quotas:Default:RequestsPerSecond"] = "1000000000",
            ["Quotas:Default:RequestBurst"] = "1000000000",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            all[key] = value;
        }
        // A 500 MB upload or a 1,000-epoch job outlasts HttpClient's default timeout.
        var options = new ServiceProcessOptions { Settings = all, ClientTimeout = TimeSpan.FromMinutes(30), EchoStandardError = true };
        return ServiceProcess.StartReadyAsync(role, postgres, options, TimeSpan.FromMinutes(2));
    }

    public static string Postgres() => Environment.GetEnvironmentVariable("TRAININGSERVICE_BENCH_POSTGRES")
        ?? throw new InvalidOperationException("Set TRAININGSERVICE_BENCH_POSTGRES (scripts/bench.sh starts a PostgreSQL and sets it).");
}
