using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>Migrating once (<c>--migrate</c>, a deployment's migration step) and processes that wait for it instead of migrating.</summary>
[Collection(ServiceTests.Name)]
public sealed class MigrationProcessTests
{
    private static readonly Dictionary<string, string> NoMigration = new()
    {
        ["Database:MigrateAtStart"] = "false",
        ["Database:MigrationWait"] = "00:00:03",
    };

    [Fact]
    public async Task A_process_that_does_not_migrate_gives_up_on_a_fresh_database_and_starts_once_migrate_ran()
    {
        await using var database = await TestDatabase.CreateAsync();

        await using (var early = ServiceFixture.StartProcess("api", database.ConnectionString, NoMigration))
        {
            int exit = await early.WaitForExitAsync(TimeSpan.FromSeconds(60));
            Assert.True(exit == 3, $"Exit code {exit}:\n{early.Output}");
            Assert.Contains("--migrate", early.Output);
            Assert.DoesNotContain("Applying", early.Output);
        }
        await using (var migrate = ServiceFixture.StartProcess("api", database.ConnectionString, arguments: ["--migrate"], configuredOwnerKey: false))
        {
            int exit = await migrate.WaitForExitAsync(TimeSpan.FromSeconds(60));
            Assert.True(exit == 0, $"Exit code {exit}:\n{migrate.Output}");
            Assert.Contains("Applying", migrate.Output);
            Assert.DoesNotContain("#key=", migrate.Output); // it only migrates: no first owner key
        }
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM api_keys"));

        await using var api = ServiceFixture.StartProcess("api", database.ConnectionString, NoMigration);
        await api.WaitReadyAsync(TimeSpan.FromSeconds(90));
        Assert.DoesNotContain("Applying", api.Output);
        Assert.Equal("[]", (await api.Client.GetJsonAsync("/api/jobs"))["items"]!.ToJsonString());
    }
}
