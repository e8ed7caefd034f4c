using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace TrainingService.Server.Tests.Infrastructure;

/// <summary>A key a test created: its public id and the whole key.</summary>
public sealed record TestKey(string Id, string Key);

/// <summary>Tenants and keys for the access tests: each test makes its own tenants, so tests never see each other's data.</summary>
public static class Tenants
{
    /// <summary>A tenant name no other test uses.</summary>
    public static string NewName(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];

    /// <summary>Creates a key through <c>POST /api/keys</c> with <paramref name="creator"/> (an owner creates the tenant on first use).</summary>
    public static async Task<TestKey> CreateKeyAsync(HttpClient creator, string tenant, string role, string name = "test")
    {
        var response = await creator.PostAsJsonAsync("/api/keys", new { tenant, role, name });
        var created = await Api.ReadAsync(response, HttpStatusCode.Created);
        return new TestKey((string)created["id"]!, (string)created["key"]!);
    }

    /// <summary>The problem body without what differs between two requests by design: the trace id.</summary>
    public static string WithoutTraceId(string body)
    {
        var node = JsonNode.Parse(body)!.AsObject();
        node.Remove("traceId");
        return node.ToJsonString();
    }
}
