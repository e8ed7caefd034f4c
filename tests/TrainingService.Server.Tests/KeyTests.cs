using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using TrainingService.Server.Access;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// API keys through the API: creation (the secret shown once), lists that never hold a secret, what an admin and a member
/// may not do, revocation (also across processes), who did what and when, and <c>GET /api/me</c>.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class KeyTests(ServiceFixture service)
{
    private static readonly string[] ListedFields = ["id", "tenant", "role", "name", "createdAt", "createdBy", "revokedAt", "revokedBy"];

    [Fact]
    public async Task A_created_key_is_returned_once_with_its_tenant_role_and_name_and_works_at_once()
    {
        string tenant = Tenants.NewName("keys");

        using var response = await service.Client.PostAsJsonAsync("/api/keys", new { tenant, role = "member", name = "ci runner" });
        var created = await Api.ReadAsync(response, HttpStatusCode.Created);
        using var client = service.CreateClient((string)created["key"]!);
        var me = await client.GetJsonAsync("/api/me");

        Assert.Equal(["id", "key", "tenant", "role", "name"], created.AsObject().Select(p => p.Key));
        string id = (string)created["id"]!;
        Assert.Matches("^[0-9a-f]{16}$", id);
        Assert.Matches($"^ts_{id}_[A-Za-z0-9_-]{{43}}$", (string)created["key"]!);
        Assert.Equal((tenant, "member", "ci runner"), ((string)created["tenant"]!, (string)created["role"]!, (string)created["name"]!));
        Assert.Equal($"/api/keys/{id}", response.Headers.Location?.OriginalString);
        Assert.Equal((id, tenant, "member"), ((string)me["keyId"]!, (string)me["tenant"]!, (string)me["role"]!));
    }

    [Fact]
    public async Task A_key_list_never_holds_a_secret_or_its_hash_and_an_admin_sees_only_its_tenant()
    {
        string tenant = Tenants.NewName("keys"), other = Tenants.NewName("keys");
        var admin = await Tenants.CreateKeyAsync(service.Client, tenant, "admin");
        var member = await Tenants.CreateKeyAsync(service.Client, tenant, "member");
        var elsewhere = await Tenants.CreateKeyAsync(service.Client, other, "admin");
        using var client = service.CreateClient(admin.Key);

        string body = await client.GetStringAsync($"/api/keys?tenant={other}"); // an admin's ?tenant= is ignored
        string ownerBody = await service.Client.GetStringAsync("/api/keys");

        var keys = JsonNode.Parse(body)!.AsArray();
        Assert.Equal([member.Id, admin.Id], keys.Select(k => (string)k!["id"]!));
        Assert.All(keys, k => Assert.Subset(ListedFields.ToHashSet(), k!.AsObject().Select(p => p.Key).ToHashSet())); // nulls are left out
        foreach (var key in new[] { admin, member, elsewhere })
        {
            foreach (string form in SecretForms(key.Key))
            {
                Assert.DoesNotContain(form, body, StringComparison.OrdinalIgnoreCase);
                Assert.DoesNotContain(form, ownerBody, StringComparison.OrdinalIgnoreCase);
            }
        }
        Assert.Contains(elsewhere.Id, ownerBody); // owners list every tenant
    }

    /// <summary>The key, its secret, and the secret's SHA-256 in hex, base64 and base64url.</summary>
    private static IEnumerable<string> SecretForms(string key)
    {
        string secret = key[20..];
        byte[] hash = SHA256.HashData(Encoding.ASCII.GetBytes(secret));
        string base64 = Convert.ToBase64String(hash);
        return [key, secret, Convert.ToHexString(hash), base64.TrimEnd('='), base64.TrimEnd('=').Replace('+', '-').Replace('/', '_')];
    }

    [Fact]
    public async Task An_admin_creates_keys_of_its_own_tenant_only_and_no_owner_and_a_member_creates_none()
    {
        string tenant = Tenants.NewName("keys");
        var admin = await Tenants.CreateKeyAsync(service.Client, tenant, "admin");
        var member = await Tenants.CreateKeyAsync(service.Client, tenant, "member");
        using var asAdmin = service.CreateClient(admin.Key);
        using var asMember = service.CreateClient(member.Key);

        await (await asAdmin.PostAsJsonAsync("/api/keys", new { tenant = Tenants.NewName("keys"), role = "viewer", name = "x" }))
            .AssertProblemAsync(HttpStatusCode.Forbidden, "auth.forbidden", "tenant");
        await (await asAdmin.PostAsJsonAsync("/api/keys", new { tenant = "default", role = "viewer", name = "x" }))
            .AssertProblemAsync(HttpStatusCode.Forbidden, "auth.forbidden", "tenant");
        await (await asAdmin.PostAsJsonAsync("/api/keys", new { tenant, role = "owner", name = "x" }))
            .AssertProblemAsync(HttpStatusCode.Forbidden, "auth.forbidden", "role");
        var refused = await (await asMember.PostAsJsonAsync("/api/keys", new { tenant, role = "viewer", name = "x" }))
            .AssertProblemAsync(HttpStatusCode.Forbidden, "auth.forbidden");
        Assert.Equal("admin", (string?)refused["requiredRole"]);
        await (await asMember.GetAsync("/api/keys")).AssertProblemAsync(HttpStatusCode.Forbidden, "auth.forbidden");

        // Its own tenant (named or implied) it may; the list shows nothing else was created.
        var ownNamed = await Api.ReadAsync(await asAdmin.PostAsJsonAsync("/api/keys", new { tenant, role = "admin", name = "named" }), HttpStatusCode.Created);
        var ownImplied = await Api.ReadAsync(await asAdmin.PostAsJsonAsync("/api/keys", new { role = "viewer", name = "implied" }), HttpStatusCode.Created);
        Assert.Equal(tenant, (string?)ownImplied["tenant"]);
        var listed = (await asAdmin.GetJsonAsync("/api/keys")).AsArray().Select(k => (string)k!["id"]!).ToHashSet();
        Assert.Equal(new HashSet<string> { admin.Id, member.Id, ownNamed.Id(), ownImplied.Id() }, listed);
    }

    [Fact]
    public async Task A_revoked_key_is_refused_on_its_next_request_and_the_list_records_who_created_and_revoked_it_and_when()
    {
        string tenant = Tenants.NewName("keys");
        var admin = await Tenants.CreateKeyAsync(service.Client, tenant, "admin");
        using var asAdmin = service.CreateClient(admin.Key);
        var before = DateTimeOffset.UtcNow.AddSeconds(-5);
        var viewer = await Tenants.CreateKeyAsync(asAdmin, tenant, "viewer");
        using var asViewer = service.CreateClient(viewer.Key);
        await asViewer.GetJsonAsync("/api/me"); // cached now

        var adminMe = await asAdmin.GetJsonAsync("/api/me");
        using var revoke = await asAdmin.DeleteAsync($"/api/keys/{viewer.Id}");
        var answer = await Api.ReadAsync(revoke, HttpStatusCode.OK);
        using var after = await asViewer.GetAsync("/api/me");
        await after.AssertProblemAsync(HttpStatusCode.Unauthorized, "auth.invalid_key");
        using var again = await asAdmin.DeleteAsync($"/api/keys/{viewer.Id}"); // revoking twice changes nothing

        var entry = (await asAdmin.GetJsonAsync("/api/keys")).AsArray().Single(k => (string)k!["id"]! == viewer.Id)!;
        var ownerEntry = (await service.Client.GetJsonAsync("/api/keys")).AsArray().Single(k => (string)k!["id"]! == admin.Id)!;
        Assert.Equal(admin.Id, (string?)entry["createdBy"]);
        Assert.Equal(admin.Id, (string?)entry["revokedBy"]);
        Assert.Equal("00000000000000ff", (string?)ownerEntry["createdBy"]); // the fixture's owner key
        Assert.Null((string?)ownerEntry["revokedAt"]);
        var createdAt = DateTimeOffset.Parse((string)entry["createdAt"]!, System.Globalization.CultureInfo.InvariantCulture);
        var revokedAt = DateTimeOffset.Parse((string)entry["revokedAt"]!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(createdAt, before, DateTimeOffset.UtcNow.AddSeconds(5));
        Assert.InRange(revokedAt, createdAt, DateTimeOffset.UtcNow.AddSeconds(5));
        Assert.Equal((string?)answer["revokedAt"], (string?)entry["revokedAt"]);
        Assert.Equal((string?)entry["revokedAt"], (string?)(await Api.ReadAsync(again, HttpStatusCode.OK))["revokedAt"]);
        Assert.Equal(admin.Id, (string?)adminMe["keyId"]);
    }

    [Fact]
    public async Task An_admin_cannot_revoke_another_tenants_key_which_answers_like_a_missing_one()
    {
        var admin = await Tenants.CreateKeyAsync(service.Client, Tenants.NewName("keys"), "admin");
        var victim = await Tenants.CreateKeyAsync(service.Client, Tenants.NewName("keys"), "viewer");
        using var asAdmin = service.CreateClient(admin.Key);

        using var other = await asAdmin.DeleteAsync($"/api/keys/{victim.Id}");
        using var missing = await asAdmin.DeleteAsync("/api/keys/00000000000000ab");
        using var owners = await asAdmin.DeleteAsync("/api/keys/00000000000000ff"); // the fixture's owner key, tenant "default"

        var problem = await other.AssertProblemAsync(HttpStatusCode.NotFound, "auth.key_not_found");
        await missing.AssertProblemAsync(HttpStatusCode.NotFound, "auth.key_not_found");
        await owners.AssertProblemAsync(HttpStatusCode.NotFound, "auth.key_not_found");
        Assert.Equal($"No key {victim.Id}.", (string?)problem["detail"]);
        using var victimClient = service.CreateClient(victim.Key);
        Assert.Equal(victim.Id, (string?)(await victimClient.GetJsonAsync("/api/me"))["keyId"]);
        Assert.Equal(HttpStatusCode.OK, (await service.Client.GetAsync("/api/me")).StatusCode);
    }

    [Theory]
    [InlineData("""{"tenant":"t","role":"viewer","name":"x","secret":"mine"}""", "secret")]
    [InlineData("""{"role":"viewer","name":"x","expires":"2030-01-01"}""", "expires")]
    public async Task Unknown_fields_in_a_key_request_are_refused(string json, string field)
    {
        using var response = await service.Client.PostAsync("/api/keys", new StringContent(json, Encoding.UTF8, "application/json"));

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "request.unknown_field", field);
    }

    [Theory]
    [InlineData("""{"role":"superuser","name":"x"}""", "auth.invalid_role", "role")]
    [InlineData("""{"role":"viewer","name":"  "}""", "auth.invalid_key_name", "name")]
    [InlineData("""{"tenant":"Not A Tenant","role":"viewer","name":"x"}""", "auth.invalid_tenant", "tenant")]
    public async Task An_invalid_key_request_names_its_field(string json, string code, string field)
    {
        using var response = await service.Client.PostAsync("/api/keys", new StringContent(json, Encoding.UTF8, "application/json"));

        await response.AssertProblemAsync(HttpStatusCode.BadRequest, code, field);
    }

    [Fact]
    public async Task A_key_refused_while_its_id_was_unknown_is_accepted_as_soon_as_it_is_created()
    {
        // Unknown ids are cached as long as known ones (so timing does not tell them apart); a creation must evict them.
        var (id, key, hash) = ApiKeyFormat.Create();
        using var client = service.CreateClient(key);
        await (await client.GetAsync("/api/me")).AssertProblemAsync(HttpStatusCode.Unauthorized, "auth.invalid_key");
        var store = service.Factory.Services.GetRequiredService<KeyStore>();

        Assert.True(await store.CreateAsync(id, hash, "default", Role.Viewer, "created after a refusal", "test", createTenant: false, CancellationToken.None));
        var clock = Stopwatch.StartNew();
        HttpStatusCode status;
        while ((status = (await client.GetAsync("/api/me")).StatusCode) != HttpStatusCode.OK && clock.Elapsed < TimeSpan.FromSeconds(5))
        {
            await Task.Delay(10);
        }

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"Accepted only after {clock.Elapsed}.");
    }

    [Fact]
    public async Task Me_returns_the_callers_key_id_tenant_and_role()
    {
        var me = await service.Client.GetJsonAsync("/api/me");

        Assert.Equal(("00000000000000ff", "default", "owner"), ((string)me["keyId"]!, (string)me["tenant"]!, (string)me["role"]!));
    }
}
