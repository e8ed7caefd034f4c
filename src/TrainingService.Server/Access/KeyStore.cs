using Npgsql;

namespace TrainingService.Server.Access;

/// <summary>A stored key as authentication needs it.</summary>
public sealed record KeyRecord(string Id, string Tenant, Role Role, byte[] SecretHash, bool Revoked);

/// <summary>A key as <c>GET /api/keys</c> lists it: never its secret or hash.</summary>
public sealed record KeyInfo(string Id, string Tenant, string Role, string Name, DateTimeOffset CreatedAt, string? CreatedBy,
    DateTimeOffset? RevokedAt, string? RevokedBy);

/// <summary>
/// Reads and writes <c>tenants</c> and <c>api_keys</c>. A revocation or creation notifies every process on
/// <see cref="Channel"/> in the same transaction, so their caches drop what they held for that id as it commits.
/// </summary>
public sealed class KeyStore(NpgsqlDataSource dataSource)
{
    public const string Channel = "api_key_events";

    /// <summary>An arbitrary, fixed advisory lock ("TSKEYS") that processes creating the first owner key take in turn.</summary>
    private const long FirstOwnerLockKey = 0x5453_4b45_5953;

    public async Task<KeyRecord?> FindAsync(string id, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT tenant, role, secret_hash, revoked_at IS NOT NULL FROM api_keys WHERE id = @id");
        command.Parameters.AddWithValue("id", id);
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        if (!await r.ReadAsync(cancellationToken))
        {
            return null;
        }
        Roles.TryParse(r.GetString(1), out var role);
        return new KeyRecord(id, r.GetString(0), role, r.GetFieldValue<byte[]>(2), r.GetBoolean(3));
    }

    /// <summary>
    /// Stores a key, creating its tenant when <paramref name="createTenant"/> (an owner's request) and it is new. Returns
    /// false when the tenant does not exist and may not be created.
    /// </summary>
    public async Task<bool> CreateAsync(string id, byte[] hash, string tenant, Role role, string name, string? createdBy, bool createTenant,
        CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (createTenant)
        {
            await using var upsert = new NpgsqlCommand(
                "INSERT INTO tenants (name, created_at, created_by) VALUES (@tenant, now(), @by) ON CONFLICT (name) DO NOTHING", connection, transaction);
            upsert.Parameters.AddWithValue("tenant", tenant);
            upsert.Parameters.AddWithValue("by", (object?)createdBy ?? DBNull.Value);
            await upsert.ExecuteNonQueryAsync(cancellationToken);
        }
        await using var insert = new NpgsqlCommand("""
            INSERT INTO api_keys (id, tenant, role, name, secret_hash, created_at, created_by)
            SELECT @id, name, @role, @name, @hash, now(), @by FROM tenants WHERE name = @tenant
            """, connection, transaction);
        insert.Parameters.AddWithValue("id", id);
        insert.Parameters.AddWithValue("tenant", tenant);
        insert.Parameters.AddWithValue("role", role.Name());
        insert.Parameters.AddWithValue("name", name);
        insert.Parameters.AddWithValue("hash", hash);
        insert.Parameters.AddWithValue("by", (object?)createdBy ?? DBNull.Value);
        bool stored = await insert.ExecuteNonQueryAsync(cancellationToken) == 1;
        if (stored)
        {
            await NotifyAsync(connection, transaction, id, cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return stored;
    }

    /// <summary>Keys newest first: of one tenant, or of all when <paramref name="tenant"/> is null (owners).</summary>
    public async Task<List<KeyInfo>> ListAsync(string? tenant, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT id, tenant, role, name, created_at, created_by, revoked_at, revoked_by FROM api_keys
            WHERE @tenant IS NULL OR tenant = @tenant ORDER BY created_at DESC, id LIMIT 10000
            """);
        command.Parameters.Add(new NpgsqlParameter<string?>("tenant", tenant) { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        var keys = new List<KeyInfo>();
        while (await r.ReadAsync(cancellationToken))
        {
            string? Text(int i) => r.IsDBNull(i) ? null : r.GetString(i);
            keys.Add(new KeyInfo(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetFieldValue<DateTimeOffset>(4), Text(5),
                r.IsDBNull(6) ? null : r.GetFieldValue<DateTimeOffset>(6), Text(7)));
        }
        return keys;
    }

    /// <summary>
    /// Revokes a key of <paramref name="tenant"/> (any tenant when null) and tells every process. Returns the key as it
    /// now is, or null when there is no such key in scope. Revoking a revoked key changes nothing.
    /// </summary>
    public async Task<KeyInfo?> RevokeAsync(string id, string? tenant, string? revokedBy, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using var update = new NpgsqlCommand("""
            UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()), revoked_by = COALESCE(revoked_by, @by)
            WHERE id = @id AND (@tenant IS NULL OR tenant = @tenant)
            RETURNING id, tenant, role, name, created_at, created_by, revoked_at, revoked_by
            """, connection, transaction);
        update.Parameters.AddWithValue("id", id);
        update.Parameters.Add(new NpgsqlParameter<string?>("tenant", tenant) { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        update.Parameters.AddWithValue("by", (object?)revokedBy ?? "configuration");
        KeyInfo? revoked = null;
        await using (var r = await update.ExecuteReaderAsync(cancellationToken))
        {
            if (await r.ReadAsync(cancellationToken))
            {
                revoked = new KeyInfo(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetFieldValue<DateTimeOffset>(4),
                    r.IsDBNull(5) ? null : r.GetString(5), r.GetFieldValue<DateTimeOffset>(6), r.GetString(7));
            }
        }
        if (revoked is not null)
        {
            await NotifyAsync(connection, transaction, id, cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return revoked;
    }

    /// <summary>Tells every process's <see cref="KeyCache"/> to forget <paramref name="id"/> when the transaction commits.</summary>
    private static async Task NotifyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string id, CancellationToken cancellationToken)
    {
        await using var notify = new NpgsqlCommand($"SELECT pg_notify('{Channel}', @id)", connection, transaction);
        notify.Parameters.AddWithValue("id", id);
        await notify.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Creates an owner key when no live key exists, atomically across processes starting together (an advisory lock
    /// held for the transaction). Returns false when a live key already existed.
    /// </summary>
    public async Task<bool> CreateFirstOwnerAsync(string id, byte[] hash, string tenant, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // A parameter, not a literal: hexadecimal integer literals in SQL need PostgreSQL 16, and compose runs 15.
        await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(@key)", connection, transaction))
        {
            lockCommand.Parameters.AddWithValue("key", FirstOwnerLockKey);
            await lockCommand.ExecuteNonQueryAsync(cancellationToken);
        }
        await using var command = new NpgsqlCommand("""
            WITH tenant AS (INSERT INTO tenants (name, created_at) VALUES (@tenant, now()) ON CONFLICT (name) DO NOTHING)
            INSERT INTO api_keys (id, tenant, role, name, secret_hash, created_at)
            SELECT @id, @tenant, 'owner', 'first owner key', @hash, now()
            WHERE NOT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL)
            """, connection, transaction);
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("tenant", tenant);
        command.Parameters.AddWithValue("hash", hash);
        bool created = await command.ExecuteNonQueryAsync(cancellationToken) == 1;
        if (created)
        {
            await NotifyAsync(connection, transaction, id, cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return created;
    }
}
