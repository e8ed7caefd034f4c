namespace TrainingService.Server.Access;

/// <summary>What a key may do, each role including the ones below it.</summary>
public enum Role
{
    /// <summary>Reads everything of its tenant.</summary>
    Viewer = 1,
    /// <summary>Also uploads, submits, cancels, retries and deletes.</summary>
    Member = 2,
    /// <summary>Also manages its tenant's keys.</summary>
    Admin = 3,
    /// <summary>Server-wide: manages tenants and the keys of every tenant.</summary>
    Owner = 4,
}

public static class Roles
{
    public static string Name(this Role role) => role.ToString().ToLowerInvariant();

    public static bool TryParse(string? text, out Role role)
    {
        role = text switch
        {
            "viewer" => Role.Viewer,
            "member" => Role.Member,
            "admin" => Role.Admin,
            "owner" => Role.Owner,
            _ => 0,
        };
        return role != 0;
    }

    /// <summary>The authorization policy that admits <paramref name="role"/> and every role above it.</summary>
    public static string Policy(this Role role) => "role:" + role.Name();
}
