using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using TrainingService.Server.Jobs;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>The job lease through network faults, on the real server through a <see cref="TcpProxy"/>.</summary>
[Collection(ServiceTests.Name)]
public sealed class JobLeaseTests(ServiceFixture service)
{
    private NpgsqlDataSource DataSource => service.Factory.Services.GetRequiredService<NpgsqlDataSource>();

    [Fact]
    public async Task A_lease_whose_connection_broke_while_its_old_session_lives_on_is_taken_again_by_its_owner()
    {
        var (proxy, proxied) = TcpProxy.ToPostgres(service.Database.ConnectionString);
        await using var _ = proxy;
        await using var viaProxy = NpgsqlDataSource.Create(proxied);
        var id = Guid.NewGuid();
        await using var lease = await JobLease.TryAcquireAsync(viaProxy, id, CancellationToken.None);
        Assert.NotNull(lease);
        int before = await HolderAsync(id);
        using var stop = new CancellationTokenSource();
        var keep = lease.KeepAsync(TimeSpan.FromMilliseconds(100), stop.Token);

        // A network blip: the worker's side of every connection breaks; the server's sessions (and the lock) live on.
        proxy.Sever();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        // Until a new session holds it: between the old session's end and the retake nobody does (holder 0).
        while (!keep.IsCompleted && await HolderAsync(id) is var holder && (holder == before || holder == 0) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }
        await stop.CancelAsync();

        Assert.True(await keep, "the lease was reported lost, though no one else took it");
        int after = await HolderAsync(id);
        Assert.NotEqual(0, after);
        Assert.NotEqual(before, after);
    }

    /// <summary>The backend holding the job's lease, or 0.</summary>
    private async Task<int> HolderAsync(Guid jobId)
    {
        await using var command = DataSource.CreateCommand("""
            SELECT coalesce((SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND ((classid::bigint << 32) | objid::bigint) = @key), 0)
            """);
        command.Parameters.AddWithValue("key", JobLease.KeyOf(jobId));
        return (int)(await command.ExecuteScalarAsync())!;
    }

}
