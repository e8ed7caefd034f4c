using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace TrainingService.Server.Access;

/// <summary>
/// Keys look like <c>ts_&lt;id&gt;_&lt;secret&gt;</c>: a public id (16 hex digits, shown in lists and used to revoke) and a
/// 256-bit secret (43 base64url characters). Only the SHA-256 of the secret is stored: the secret is random, so a slow
/// password hash would add nothing but latency to every request.
/// </summary>
public static partial class ApiKeyFormat
{
    public const string Pattern = Configuration.AuthOptions.KeyPattern;

    /// <summary>A new key: its id, the whole key to show once, and the hash to store.</summary>
    public static (string Id, string Key, byte[] Hash) Create()
    {
        string id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        string secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        return (id, $"ts_{id}_{secret}", Hash(secret));
    }

    /// <summary>Splits a presented key; false for anything not shaped like one.</summary>
    public static bool TryParse(string? key, out string id, out string secret)
    {
        id = secret = "";
        if (key is null || key.Length != 63 || !Regex().IsMatch(key))
        {
            return false;
        }
        id = key[3..19];
        secret = key[20..];
        return true;
    }

    public static byte[] Hash(string secret) => SHA256.HashData(Encoding.ASCII.GetBytes(secret));

    /// <summary>Constant-time comparison of a presented secret with a stored hash.</summary>
    public static bool Matches(string secret, byte[] storedHash) => CryptographicOperations.FixedTimeEquals(Hash(secret), storedHash);

    [GeneratedRegex(Pattern, RegexOptions.CultureInvariant)]
    private static partial Regex Regex();
}
