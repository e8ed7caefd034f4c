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
