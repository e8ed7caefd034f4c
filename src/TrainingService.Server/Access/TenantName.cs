using System.Text.RegularExpressions;

namespace TrainingService.Server.Access;

/// <summary>Tenant names: the identifier in every row, so short, lowercase and safe in URLs and logs.</summary>
public static partial class TenantName
{
    public const string Pattern = Configuration.AuthOptions.TenantPattern;

    public static bool IsValid(string? name) => name is not null && Regex().IsMatch(name);

    [GeneratedRegex(Pattern, RegexOptions.CultureInvariant)]
    private static partial Regex Regex();
}
