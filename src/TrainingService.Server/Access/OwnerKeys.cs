using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using TrainingService.Server.Configuration;

namespace TrainingService.Server.Access;

/// <summary>
/// The owner keys that exist without anyone creating them through the API: the one given by configuration
/// (<see cref="AuthOptions.OwnerKey"/>), the first start's (printed once, like Jupyter's token), and
/// <c>--create-owner-key</c>'s. There is no default key and no default password.
/// </summary>
public sealed class OwnerKeys(KeyStore store, IOptions<AuthOptions> options, ILogger<OwnerKeys> logger)
{
    /// <summary>
    /// At start: stores the configured owner key if it is new, or creates the first owner key when no live key exists.
    /// Returns that first key, to print once the server's address is known; null otherwise.
    /// </summary>
    public async Task<string?> EnsureAsync(CancellationToken cancellationToken)
    {
        var auth = options.Value;
        if (auth.Mode == AuthMode.None)
        {
            logger.LogWarning("Auth:Mode is none: there are no keys, and every caller is the owner of tenant {Tenant}. Loopback only.", auth.OwnerTenant);
            return null;
        }
        if (!string.IsNullOrEmpty(auth.OwnerKey))
        {
            await EnsureConfiguredAsync(auth.OwnerKey, auth.OwnerTenant, cancellationToken);
            return null;
        }
        var (id, key, hash) = ApiKeyFormat.Create();
        if (!await store.CreateFirstOwnerAsync(id, hash, auth.OwnerTenant, cancellationToken))
        {
            return null;
        }
        logger.LogWarning("No API key existed: created owner key {KeyId} for tenant {Tenant}; it is printed once on standard output", id, auth.OwnerTenant);
        return key;
    }

    private async Task EnsureConfiguredAsync(string ownerKey, string tenant, CancellationToken cancellationToken)
    {
        ApiKeyFormat.TryParse(ownerKey, out string id, out string secret); // the options validated its shape
        var stored = await store.FindAsync(id, cancellationToken);
        if (stored is null)
        {
            try
            {
                await store.CreateAsync(id, ApiKeyFormat.Hash(secret), tenant, Role.Owner, "configured owner key", null, createTenant: true, cancellationToken);
                logger.LogInformation("Stored the configured owner key {KeyId} for tenant {Tenant}", id, tenant);
                return;
            }
            catch (Npgsql.PostgresException e) when (e.SqlState == Npgsql.PostgresErrorCodes.UniqueViolation)
            {
                stored = await store.FindAsync(id, cancellationToken); // another API process starting with the same setting stored it first
            }
        }
        if (stored is null)
        {
            return;
        }
        if (!ApiKeyFormat.Matches(secret, stored.SecretHash))
        {
            throw new OptionsValidationException("Auth", typeof(AuthOptions),
                [$"Auth:OwnerKey has id {id}, which is stored with another secret. Give the key that was created, or a new one."]);
        }
        else if (stored.Revoked)
        {
            logger.LogWarning("The configured owner key {KeyId} was revoked; it stays revoked. Configure a new one", id);
        }
    }

    /// <summary>Creates an owner key of <see cref="AuthOptions.OwnerTenant"/> for <c>--create-owner-key</c>; returns it.</summary>
    public async Task<string> CreateAsync(CancellationToken cancellationToken)
    {
        var (id, key, hash) = ApiKeyFormat.Create();
        await store.CreateAsync(id, hash, options.Value.OwnerTenant, Role.Owner, "created with --create-owner-key", null, createTenant: true, cancellationToken);
        logger.LogInformation("Created owner key {KeyId} for tenant {Tenant} from the command line", id, options.Value.OwnerTenant);
        return key;
    }

    /// <summary>The first key and a dashboard link that signs in with it (the key rides in the fragment, never sent to a server).</summary>
    public static void Print(string key, IServer server)
    {
        string address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? "http://localhost:5000";
        address = address.Replace("://[::]", "://localhost").Replace("://0.0.0.0", "://localhost").Replace("://+", "://localhost").Replace("://*", "://localhost");
        Console.Out.WriteLine($"""

            ============================================================================
             TrainingService created the first owner key. It is shown this once; keep it.

                 {key}

             Open the dashboard signed in:  {address.TrimEnd('/')}/#key={key}
             Or call the API with:          Authorization: Bearer {key}
            ============================================================================

            """);
        Console.Out.Flush();
    }
}
