using Microsoft.Playwright;
using TrainingService.ProcessHarness;

namespace TrainingService.Browser.Tests;

/// <summary>
/// What every browser test shares: the service's executable (API and worker in one process) on a fresh PostgreSQL
/// database, and one headless Debian chromium driven by Playwright. Each test takes its own page with
/// <see cref="NewPageAsync"/> (a fresh browser context: no storage shared between tests) and runs its steps through
/// <see cref="DashboardPage.RunAsync"/>, which fails it on any console error or failed request and keeps a screenshot:
/// <code>
/// [Collection(BrowserTests.Name)]
/// public sealed class ChartTests(BrowserFixture fixture)
/// {
///     [Fact]
///     public async Task Something_a_person_sees()
///     {
///         string job = await fixture.Service.Client.SubmitAsync(new { … });   // set the scene through the API
///         await using var dashboard = await fixture.NewPageAsync($"&amp;job={job}");
///         dashboard.ExpectStatus(404, "/api/jobs/");                      // only if the test provokes one
///         await dashboard.RunAsync(async page => { await Expect(page.Locator("#job-status")).ToContainTextAsync("succeeded"); });
///     }
/// }
/// </code>
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public const string ChromiumVariable = "TRAININGSERVICE_CHROMIUM";
    private const string DefaultChromium = "/usr/bin/chromium";

    /// <summary>The owner key the service is configured with (Auth:OwnerKey); the page signs in with it through <c>/#key=</c>.</summary>
    public const string OwnerKey = "ts_00000000000000fe_BrowserOwnerKeyBrowserOwnerKeyBrowserOwnerK";

    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);

    private TestDatabase? _database;
    private ServiceProcess? _service;
    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    /// <summary>The service's address, e.g. <c>http://127.0.0.1:41234</c>.</summary>
    public string BaseUrl => $"http://127.0.0.1:{Service.Port}";

    /// <summary>The service's database, for tests that write a job's history straight into it (<see cref="SeededJobs"/>).</summary>
    public string ConnectionString => _database?.ConnectionString ?? throw new InvalidOperationException("The fixture has not started.");

    /// <summary>The running service; its <see cref="ServiceProcess.Client"/> sends <see cref="OwnerKey"/>.</summary>
    public ServiceProcess Service => _service ?? throw new InvalidOperationException("The fixture has not started.");

    /// <summary>Where failing tests leave their screenshots: a folder under the test output.</summary>
    public static string ScreenshotFolder { get; } = Path.Combine(AppContext.BaseDirectory, "screenshots");

    public async Task InitializeAsync()
    {
        string chromium = Environment.GetEnvironmentVariable(ChromiumVariable) is { Length: > 0 } set ? set : DefaultChromium;
        if (!File.Exists(chromium))
        {
            throw new InvalidOperationException($"No chromium at {chromium}. The browser tests drive Debian's chromium, never a " +
                $"downloaded one: run scripts/test.sh (it installs it through scripts/lib/chromium.sh), apt-get install chromium, " +
                $"or set {ChromiumVariable} to a chromium executable.");
        }
        _database = await TestDatabase.CreateAsync();
        _service = await ServiceProcess.StartReadyAsync("all", _database.ConnectionString,
            new ServiceProcessOptions
            {
                Settings = Settings(_database.ConnectionString),
                // The build output has no wwwroot (publishing copies it); serve the checkout's, the files under test.
                Arguments = ["--webroot", Path.Combine(ServiceProcess.RepositoryRoot(), "src", "TrainingService.Server", "wwwroot")],
                EchoStandardError = true,
            }, Startup);
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = chromium, Headless = true });
    }

    /// <summary>
    /// A fresh page (its own context) signed in as the owner, on the dashboard with <paramref name="fragment"/> appended
    /// to the key (e.g. <c>"&amp;job=…"</c>); it has loaded the job list when this returns.
    /// </summary>
    public async Task<DashboardPage> NewPageAsync(string fragment = "", Func<IBrowserContext, Task>? prepare = null,
        [System.Runtime.CompilerServices.CallerMemberName] string test = "")
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = BaseUrl,
            ViewportSize = new ViewportSize { Width = 1400, Height = 1000 },
            AcceptDownloads = true,
        });
        if (prepare is not null)
        {
            await prepare(context); // routes and the like, in place before the first request
        }
        var page = new DashboardPage(context, await context.NewPageAsync(), test, () => Service.Output);
        try
        {
            // Through RunAsync: a page that breaks while loading fails with what it logged and a screenshot.
            await page.RunAsync(async p =>
            {
                await p.GotoAsync($"/#key={OwnerKey}{fragment}");
                await Assertions.Expect(p.Locator("#app")).ToBeVisibleAsync();
            });
            return page;
        }
        catch
        {
            await page.DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }
        _playwright?.Dispose();
        if (_service is not null)
        {
            await _service.DisposeAsync();
        }
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }

    // Fast polling so a test sees queued work start within a second; small epochs keep the whole path short.
    private static Dictionary<string, string> Settings(string connectionString) => new()
    {
        ["ConnectionStrings:Postgres"] = connectionString,
        ["Auth:OwnerKey"] = OwnerKey,
        ["Compute:Device"] = "Cpu",
        ["Worker:QueuePollInterval"] = "00:00:01",
        ["Worker:CancellationPollInterval"] = "00:00:00.500",
        ["Worker:ShutdownTimeout"] = "00:00:05",
        ["Logging:LogLevel:Default"] = "Warning",
        ["Logging:Console:FormatterName"] = "simple",
    };
}

[CollectionDefinition(Name)]
public sealed class BrowserTests : ICollectionFixture<BrowserFixture>
{
    public const string Name = "Browser";
}
