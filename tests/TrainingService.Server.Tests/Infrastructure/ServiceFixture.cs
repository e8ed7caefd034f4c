using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using TrainingService.ProcessHarness;

namespace TrainingService.Server.Tests.Infrastructure;

/// <summary>
/// One in-process service (API and worker) on a fresh PostgreSQL database, shared by every test in the "Service"
/// collection. Hangfire keeps static state, so the test process hosts only this one; tests that need other processes
/// start the real executable (see <see cref="StartProcess"/>).
/// </summary>
public sealed class ServiceFixture : IAsyncLifetime
{
    public TestDatabase Database { get; private set; } = null!;
    public WebApplicationFactory<Program> Factory { get; private set; } = null!;
    public HttpClient Client { get; private set; } = null!;

    /// <summary>
    /// Losses:MaxElements of the in-process host, small so tests reach it; processes keep the default, so a million
    /// values still pass through Kestrel.
    /// </summary>
    public const int MaxLossElements = 1000;

    /// <summary>
    /// The owner key every test host and process is configured with (Auth:OwnerKey), of tenant "default"; the shared
    /// <see cref="Client"/> sends it. Tests about keys make their own.
    /// </summary>
    public const string OwnerKey = "ts_00000000000000ff_TestOwnerKeyTestOwnerKeyTestOwnerKeyTestOwn";

    /// <summary>Settings every test host and test process uses: fast polling, small limits the tests can reach.</summary>
    public static Dictionary<string, string> Settings(string connectionString) => new()
    {
        ["ConnectionStrings:Postgres"] = connectionString,
        ["Auth:OwnerKey"] = OwnerKey,
        ["Compute:Device"] = "Cpu",
        ["Worker:QueuePollInterval"] = "00:00:01",
        ["Worker:InvisibilityTimeout"] = "00:00:05",
        ["Worker:CancellationPollInterval"] = "00:00:00.500",
        ["Worker:RecoveryDelay"] = "00:00:02",
        ["Sweeps:ReconcileInterval"] = "00:00:00.250",
        ["Worker:ShutdownTimeout"] = "00:00:05",
        ["Jobs:StreamHeartbeat"] = "00:00:01",
        ["Telemetry:GaugeInterval"] = "00:00:01",
        ["Jobs:MaxEpochs"] = "2000",
        ["Jobs:MaxHiddenUnits"] = "512",
        ["Jobs:MaxCompareJobs"] = "5",
        ["Jobs:MaxHistoryLimit"] = "500",
        ["Jobs:DefaultHistoryLimit"] = "500",
        ["Datasets:ChunkRows"] = "1000",
        ["Datasets:MaxColumns"] = "200",
        ["Datasets:MaxCategories"] = "20",
        ["Datasets:MaxUploadBytes"] = "16000000",
        ["Logging:LogLevel:Default"] = "Warning",
        ["Logging:LogLevel:TrainingService"] = "Information",
        // Small quotas for tenants the quota tests create; every other tenant has the generous defaults.
        ["Quotas:Tenants:quota-rate:RequestsPerSecond"] = "0.2",
        ["Quotas:Tenants:quota-rate:RequestBurst"] = "3",
        ["Quotas:Tenants:quota-upload:MaxUploadBytes"] = "2000",
        ["Quotas:Tenants:quota-storage:MaxStoredBytes"] = "5000",
        ["Quotas:Tenants:quota-race:MaxStoredBytes"] = "5000",
    };

    /// <summary>
    /// The real executable in its own process with <see cref="Settings"/> and <paramref name="overrides"/>, for tests about
    /// several processes sharing one database. It is not ready until <see cref="ServiceProcess.WaitReadyAsync"/> returns.
    /// <paramref name="arguments"/> follow <c>--role</c> on the command line; without <paramref name="configuredOwnerKey"/>
    /// the process has no Auth:OwnerKey (a first start) and its client sends no key.
    /// </summary>
    public static ServiceProcess StartProcess(string role, string connectionString, IReadOnlyDictionary<string, string>? overrides = null,
        IReadOnlyList<string>? arguments = null, bool configuredOwnerKey = true)
    {
        var settings = Settings(connectionString);
        foreach (var (key, value) in overrides ?? new Dictionary<string, string>())
        {
            settings[key] = value;
        }
        if (!configuredOwnerKey)
        {
            settings.Remove("Auth:OwnerKey");
        }
        settings["Logging:Console:FormatterName"] = "simple";
        return ServiceProcess.Start(role, connectionString,
            new ServiceProcessOptions { Settings = settings, Arguments = arguments ?? [], ClientTimeout = TimeSpan.FromMinutes(2) });
    }

    public async Task InitializeAsync()
    {
        Database = await TestDatabase.CreateAsync();
        Factory = new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
        {
            foreach (var (key, value) in Settings(Database.ConnectionString))
            {
                builder.UseSetting(key, value);
            }
            builder.UseSetting("Losses:MaxElements", MaxLossElements.ToString(System.Globalization.CultureInfo.InvariantCulture));
        });
        Client = CreateClient(OwnerKey);
        await Client.GetAsync("/health/live"); // starts the host: migrations, Hangfire, the listener
    }

    /// <summary>A client of the in-process host that sends <paramref name="key"/> (none when null).</summary>
    public HttpClient CreateClient(string? key)
    {
        var client = Factory.CreateClient();
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        }
        return client;
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        await Factory.DisposeAsync();
        await Database.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class ServiceTests : ICollectionFixture<ServiceFixture>
{
    public const string Name = "Service";
}
