using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Access;

/// <summary>
/// The request rate per API key (<c>Quotas:…:RequestsPerSecond</c>, <c>RequestBurst</c>): a token bucket per key id, sized by
/// the key's tenant, checked after authentication (so the partition is the caller's key, never an address: clients behind
/// one proxy are many keys, and one key may come from many addresses). Only API routes (those that require a role) count:
/// health, documents and the dashboard's files are not limited, nor are requests without a valid key (a 401) or no-auth mode. Past the rate: 429 <c>quota.rate_limited</c> with <c>Retry-After</c>.
/// </summary>
public static class RequestRates
{
    public const string Code = "quota.rate_limited";

    public static IServiceCollection AddRequestRates(this IServiceCollection services)
    {
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<IOptions<QuotaOptions>>((options, quotas) =>
        {
            options.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
                context.Features.Get<Caller>() is { KeyId: { } keyId } caller && context.GetEndpoint()?.Metadata.GetMetadata<RequiredRole>() is not null
                    ? RateLimitPartition.GetTokenBucketLimiter(keyId, _ => Bucket(quotas.Value.For(caller.Tenant)))
                    : RateLimitPartition.GetNoLimiter(""));
            options.OnRejected = RejectAsync;
        });
        return services;
    }

    /// <summary>
    /// A bucket of <see cref="TenantLimits.RequestBurst"/> tokens refilled at <see cref="TenantLimits.RequestsPerSecond"/>: in
    /// steps of a tenth of a second when the rate allows whole tokens per step, else one token at a time.
    /// </summary>
    internal static TokenBucketRateLimiterOptions Bucket(TenantLimits limits)
    {
        int perStep = Math.Max(1, (int)Math.Round(limits.RequestsPerSecond / 10));
        return new TokenBucketRateLimiterOptions
        {
            TokenLimit = limits.RequestBurst,
            TokensPerPeriod = perStep,
            ReplenishmentPeriod = TimeSpan.FromSeconds(perStep / limits.RequestsPerSecond),
            QueueLimit = 0,
            AutoReplenishment = true,
        };
    }

    private static async ValueTask RejectAsync(OnRejectedContext rejected, CancellationToken cancellationToken)
    {
        var context = rejected.HttpContext;
        var caller = context.Features.Get<Caller>();
        var limits = context.RequestServices.GetRequiredService<IOptions<QuotaOptions>>().Value.For(caller?.Tenant ?? "");
        var wait = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : TimeSpan.FromSeconds(1 / limits.RequestsPerSecond);
        int seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
        context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(RequestRates))
            .LogDebug("Key {KeyId} of tenant {Tenant} is over its request rate ({Rate}/s, burst {Burst})", caller?.KeyId, caller?.Tenant,
                limits.RequestsPerSecond, limits.RequestBurst);
        await ApiProblem.TooManyRequests(Code,
                $"This key made more than {limits.RequestsPerSecond:0.##} requests a second (burst {limits.RequestBurst}; its tenant's " +
                $"Quotas:…:RequestsPerSecond and RequestBurst); try again after Retry-After ({seconds} s).")
            .ToResult().ExecuteAsync(context);
    }
}
