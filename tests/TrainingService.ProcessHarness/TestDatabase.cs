using Npgsql;
using Testcontainers.PostgreSql;

namespace TrainingService.ProcessHarness;

/// <summary>
/// A PostgreSQL server for the tests: the one named by TRAININGSERVICE_TEST_POSTGRES (scripts/test.sh starts one),
/// else a Testcontainers container where Docker runs, else a clear failure. Never SQLite, never in-memory.
/// Each test run gets its own database, dropped at the end.
/// </summary>
public sealed class TestDatabase : IAsyncDisposable
{
    public const string Variable = "TRAININGSERVICE_TEST_POSTGRES";

    private PostgreSqlContainer? _container;
    private string _admin = "";

    public string ConnectionString { get; private set; } = "";
    public string Name { get; } = $"ts_test_{Guid.NewGuid():N}"[..24];

    public static async Task<TestDatabase> CreateAsync()
    {
        var database = new TestDatabase();
        await database.StartAsync();
        return database;
    }

    private async Task StartAsync()
    {
        _admin = Environment.GetEnvironmentVariable(Variable) ?? "";
        if (_admin.Length == 0)
        {
            try
            {
                _container = new PostgreSqlBuilder("postgres:16-alpine").Build();
                await _container.StartAsync();
                _admin = _container.GetConnectionString();
            }
            catch (Exception e)
            {
                throw new InvalidOperationException(
                    $"No PostgreSQL for the tests: set {Variable} to a server's connection string (scripts/test.sh starts a local " +
                    $"PostgreSQL and sets it), or run where Docker is available for Testcontainers. ({e.GetType().Name}: {e.Message})", e);
            }
        }
        await using (var connection = new NpgsqlConnection(_admin))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{Name}\"", connection);
            await create.ExecuteNonQueryAsync();
        }
        ConnectionString = new NpgsqlConnectionStringBuilder(_admin) { Database = Name, MaxPoolSize = 200 }.ConnectionString;
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            await using var connection = new NpgsqlConnection(_admin);
            await connection.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{Name}\" WITH (FORCE)", connection);
            await drop.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException)
        {
            // A throwaway server (scripts/test.sh) is removed anyway.
        }
        if (_container is not null)
        {
            await _container.DisposeAsync();
        }
    }

    /// <summary>Runs a scalar query against the test database.</summary>
    public async Task<T> ScalarAsync<T>(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }
}
