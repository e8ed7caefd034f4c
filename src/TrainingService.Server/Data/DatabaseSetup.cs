using Hangfire.PostgreSql;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.Extensions.Options;
using Npgsql;
using TrainingService.Server.Configuration;

namespace TrainingService.Server.Data;

public static class DatabaseSetup
{
    /// <summary>The schema Hangfire's tables live in, beside ours in <c>public</c>.</summary>
    public const string HangfireSchema = "hangfire";

    // An arbitrary, fixed key: every process that starts takes this lock before touching the schema.
    private const long MigrationLockKey = 0x5452_4149_4E53_5643;

    /// <summary>Registers one <see cref="NpgsqlDataSource"/> (pooled connections, raw SQL on hot paths) and the DbContext.</summary>
    public static IServiceCollection AddDatabase(this IServiceCollection services)
    {
        services.AddSingleton(provider =>
        {
            var options = provider.GetRequiredService<IOptions<DatabaseOptions>>().Value;
            var builder = new NpgsqlDataSourceBuilder(options.ConnectionString);
            builder.UseLoggerFactory(provider.GetRequiredService<ILoggerFactory>());
            return builder.Build();
        });
        services.AddDbContext<TrainingDbContext>((provider, options) =>
            options.UseNpgsql(provider.GetRequiredService<NpgsqlDataSource>()).UseSnakeCaseNamingConvention());
        return services;
    }

    /// <summary>
    /// For a process that does not migrate (<c>Database:MigrateAtStart=false</c>): waits until every migration is applied
    /// and Hangfire's schema is installed, reading only; false when that has not happened within <paramref name="wait"/>.
    /// </summary>
    public static async Task<bool> WaitForSchemaAsync(this IServiceProvider services, TimeSpan wait, CancellationToken cancellationToken = default)
    {
        using var scope = services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<TrainingDbContext>();
        var dataSource = scope.ServiceProvider.GetRequiredService<NpgsqlDataSource>();
        var expected = db.Database.GetMigrations().ToHashSet();
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            var applied = await AppliedMigrationsAsync(dataSource, cancellationToken);
            if (expected.IsSubsetOf(applied))
            {
                return true;
            }
            if (DateTime.UtcNow >= deadline)
            {
                return false;
            }
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
        }
    }

    /// <summary>The migrations applied, or none while the history table or Hangfire's schema is missing (read only).</summary>
    private static async Task<string[]> AppliedMigrationsAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        await using (var exists = dataSource.CreateCommand(
            $"""SELECT to_regclass('"__EFMigrationsHistory"') IS NOT NULL AND to_regclass('"{HangfireSchema}".server') IS NOT NULL"""))
        {
            if (await exists.ExecuteScalarAsync(cancellationToken) is not true)
            {
                return [];
            }
        }
        await using var read = dataSource.CreateCommand("""SELECT coalesce(array_agg(migration_id), ARRAY[]::text[]) FROM "__EFMigrationsHistory" """);
        return (string[])(await read.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>
    /// Applies EF Core migrations and installs Hangfire's schema: the one place the schema changes. A PostgreSQL
    /// advisory lock makes it safe when an API and several workers start at once; the others wait, then find it done.
    /// </summary>
    public static async Task MigrateDatabaseAsync(this IServiceProvider services, CancellationToken cancellationToken = default)
    {
        using var scope = services.CreateScope();
        var logger = scope.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(DatabaseSetup));
        var dataSource = scope.ServiceProvider.GetRequiredService<NpgsqlDataSource>();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_lock(@key)", connection))
        {
            lockCommand.Parameters.AddWithValue("key", MigrationLockKey);
            await lockCommand.ExecuteNonQueryAsync(cancellationToken);
        }
        try
        {
            var db = scope.ServiceProvider.GetRequiredService<TrainingDbContext>();
            // EF reads the history table without checking that it exists, and logs the failed read of a fresh database at
            // Error level: create it first, so a first start logs no error.
            await db.GetService<IHistoryRepository>().CreateIfNotExistsAsync(cancellationToken);
            var pending = (await db.Database.GetPendingMigrationsAsync(cancellationToken)).ToList();
            if (pending.Count > 0)
            {
                logger.LogInformation("Applying {Count} migrations: {Migrations}", pending.Count, pending);
                await db.Database.MigrateAsync(cancellationToken);
            }
            PostgreSqlObjectsInstaller.Install(connection, HangfireSchema);
        }
        finally
        {
            await using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock(@key)", connection);
            unlock.Parameters.AddWithValue("key", MigrationLockKey);
            await unlock.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }
}
