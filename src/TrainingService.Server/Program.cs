using TrainingService.Server.Compute;
using TrainingService.Server.Configuration;
using TrainingService.Server.Data;
using TrainingService.Server.Datasets;
using TrainingService.Server.Histories;
using TrainingService.Server.Infrastructure;
using TrainingService.Server.Jobs;
using TrainingService.Server.Losses;

// One executable, three roles: `--role api`, `--role worker`, or both (the default, for a laptop).
if (args.Contains("--healthcheck"))
{
    return await HealthProbe.RunAsync();
}

var builder = WebApplication.CreateBuilder(args);
builder.Configuration.AddRoleSwitch(args);
var service = builder.Configuration.ReadServiceOptions();

builder.Services.AddServiceOptions(builder.Configuration);
builder.Services.AddApiBasics();
builder.Services.AddDatabase();
builder.Services.AddCompute();
builder.Services.AddJobQueue(service);
builder.Services.AddDatasets();
builder.Services.AddHistories();
builder.Services.AddLosses();

var app = builder.Build();
app.Services.GetService<Microsoft.Extensions.Options.IStartupValidator>()?.Validate(); // a bad setting stops us before the database is touched
await app.Services.MigrateDatabaseAsync();

app.UseApiBasics();
if (service.ServesApi)
{
    app.UseApiDocs();
    app.UseDefaultFiles();
    app.UseStaticFiles();
    app.MapDatasetEndpoints();
    app.MapJobEndpoints();
    app.MapModelEndpoints();
    app.MapHistoryEndpoints();
    app.MapLossEndpoints();
}
app.Logger.LogInformation("TrainingService started as {Role}", service.Role);
await app.RunAsync();
return 0;

/// <summary>Exposed for WebApplicationFactory in the tests.</summary>
public partial class Program;
