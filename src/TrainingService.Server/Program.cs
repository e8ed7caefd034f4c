using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.Extensions.Options;
using TrainingService.Server.Access;
using TrainingService.Server.Compute;
using TrainingService.Server.Configuration;
using TrainingService.Server.Data;
using TrainingService.Server.Datasets;
using TrainingService.Server.Histories;
using TrainingService.Server.Infrastructure;
using TrainingService.Server.Jobs;
using TrainingService.Server.Losses;
using TrainingService.Server.Sweeps;
using TrainingService.Server.Telemetry;

// One executable, three roles: `--role api`, `--role worker`, or both (the default, for a laptop).
if (args.Contains("--healthcheck"))
{
    return await HealthProbe.RunAsync();
}

// `--create-owner-key`: migrate, create an owner key of Auth:OwnerTenant, print it, exit (for scripts and operators).
bool createOwnerKey = args.Contains("--create-owner-key");
// `--migrate`: apply the migrations and Hangfire's schema, exit (a deployment's one-off migration step).
bool migrateOnly = args.Contains("--migrate");
args = args.Where(a => a is not ("--create-owner-key" or "--migrate")).ToArray();

var builder = WebApplication.CreateBuilder(args);
builder.Configuration.AddRoleSwitch(args);
var service = builder.Configuration.ReadServiceOptions();
if (service.ServesApi && AccessSetup.CheckNoAuthAddresses(builder.Configuration) is { } openAddresses)
{
    Console.Error.WriteLine(openAddresses);
    return 2;
}

builder.Services.AddServiceOptions(builder.Configuration);
builder.Services.AddApiBasics();
builder.Services.AddAccess(service);
builder.Services.AddDatabase();
builder.Services.AddCompute();
builder.Services.AddJobQueue(service);
builder.Services.AddDatasets();
builder.Services.AddHistories();
builder.Services.AddLosses();
builder.Services.AddSweeps(service);
builder.Services.AddTelemetry(builder.Configuration, service);

var app = builder.Build();
app.Services.GetService<Microsoft.Extensions.Options.IStartupValidator>()?.Validate(); // a bad setting stops us before the database is touched
var database = app.Services.GetRequiredService<IOptions<DatabaseOptions>>().Value;
if (migrateOnly || database.MigrateAtStart)
{
    await app.Services.MigrateDatabaseAsync();
}
else if (!await app.Services.WaitForSchemaAsync(database.MigrationWait))
{
    app.Logger.LogCritical("The database schema is not current after {Wait} (Database:MigrateAtStart is false): run the executable with " +
        "--migrate (the deployment's migration step) first. Stopping.", database.MigrationWait);
    return 3;
}
if (migrateOnly)
{
    return 0;
}
if (createOwnerKey)
{
    Console.Out.WriteLine(await app.Services.GetRequiredService<OwnerKeys>().CreateAsync(CancellationToken.None));
    return 0;
}

app.UseApiBasics();
app.MapMetrics(service);
if (service.ServesApi)
{
    string? firstKey = await app.Services.GetRequiredService<OwnerKeys>().EnsureAsync(CancellationToken.None);
    app.Lifetime.ApplicationStarted.Register(() =>
    {
        var server = app.Services.GetRequiredService<IServer>();
        if (AccessSetup.CheckNoAuthAddresses(server, app.Services.GetRequiredService<IOptions<AuthOptions>>()) is { } open)
        {
            app.Logger.LogCritical("{Problem} Stopping.", open);
            Environment.ExitCode = 2;
            app.Lifetime.StopApplication();
        }
        else if (firstKey is not null)
        {
            OwnerKeys.Print(firstKey, server);
        }
    });
    app.UseApiDocs();
    app.UseDefaultFiles();
    app.UseStaticFiles();
    app.UseAccess();
    app.MapKeyEndpoints();
    app.MapDatasetEndpoints();
    app.MapJobEndpoints();
    app.MapModelEndpoints();
    app.MapHistoryEndpoints();
    app.MapSweepEndpoints();
    app.MapLossEndpoints();
    AccessSetup.CheckEveryApiRouteHasARole(app);
}
app.Logger.LogInformation("TrainingService started as {Role}", service.Role);
await app.RunAsync();
return Environment.ExitCode;

/// <summary>Exposed for WebApplicationFactory in the tests.</summary>
public partial class Program;
