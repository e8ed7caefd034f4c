namespace TrainingService.Server.Data.Entities;

/// <summary>A team or project: every dataset, job and key belongs to exactly one.</summary>
public sealed class Tenant
{
    /// <summary>The tenant's name, also its identifier (lowercase letters, digits, '-' and '_').</summary>
    public required string Name { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>The key that created it (null for the tenant of the first owner key).</summary>
    public string? CreatedBy { get; set; }
}

/// <summary>An API key: <c>ts_&lt;Id&gt;_&lt;secret&gt;</c>, of which only the SHA-256 of the secret is stored.</summary>
public sealed class ApiKey
{
    /// <summary>The public part of the key, shown in lists and used to revoke it.</summary>
    public required string Id { get; set; }
    public required string Tenant { get; set; }
    /// <summary>One of <c>Access.Role</c>, lowercase.</summary>
    public required string Role { get; set; }
    public required string Name { get; set; }
    public required byte[] SecretHash { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>The key that created this one; null when created at start (first start, configuration, command line).</summary>
    public string? CreatedBy { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
    public string? RevokedBy { get; set; }
}
