using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using TrainingService.Server.Access;
using TrainingService.Server.Tests.Infrastructure;

namespace TrainingService.Server.Tests;

/// <summary>
/// Every route of the OpenAPI document crossed with every kind of caller. The table of routes below is the one place
/// that says which role each route needs; a route added to the API without its row (or a row left behind by a removed
/// route) fails <see cref="Every_route_in_the_OpenAPI_document_has_exactly_one_row_in_the_matrix"/>.
/// </summary>
[Collection(ServiceTests.Name)]
public sealed class AuthorizationMatrixTests(ServiceFixture service)
{
    /// <summary>Tenant A's existing resources, and ids that exist nowhere.</summary>
    private sealed record Ids(string DatasetId, string JobId, string KeyId, string SweepId)
    {
        public const string UnknownGuid = "00000000-0000-0000-0000-00000000dead";
        public const string UnknownKeyId = "00000000000000aa";
    }

    /// <summary>
    /// One route: the least role that may call it (null: anyone), a harmless request and the status it gets from a caller
    /// who may call the route (never 401/403: 404 for an unknown id, 400 for an empty body), and, for routes that name a
    /// resource, the same request on tenant A's existing resource, which another tenant's key gets as a 404.
    /// </summary>
    private sealed record Row(string Method, string Path, Role? Role, Func<HttpRequestMessage> Harmless, HttpStatusCode Allowed,
        Func<Ids, HttpRequestMessage>? OfTenantA = null)
    {
        public string Route => $"{Method} {Path}";
    }

    private static readonly Row[] Routes =
    [
        new("POST", "/api/keys", Role.Admin, () => Json(HttpMethod.Post, "/api/keys", "{}"), HttpStatusCode.BadRequest),
        new("GET", "/api/keys", Role.Admin, () => Send(HttpMethod.Get, "/api/keys"), HttpStatusCode.OK),
        new("DELETE", "/api/keys/{id}", Role.Admin, () => Send(HttpMethod.Delete, $"/api/keys/{Ids.UnknownKeyId}"), HttpStatusCode.NotFound,
            a => Send(HttpMethod.Delete, $"/api/keys/{a.KeyId}")),
        new("GET", "/api/me", Role.Viewer, () => Send(HttpMethod.Get, "/api/me"), HttpStatusCode.OK),

        new("POST", "/api/datasets", Role.Member, () => Csv(""), HttpStatusCode.BadRequest),
        new("GET", "/api/datasets", Role.Viewer, () => Send(HttpMethod.Get, "/api/datasets"), HttpStatusCode.OK),
        new("GET", "/api/datasets/{id}", Role.Viewer, () => Send(HttpMethod.Get, $"/api/datasets/{Ids.UnknownGuid}"), HttpStatusCode.NotFound,
            a => Send(HttpMethod.Get, $"/api/datasets/{a.DatasetId}")),
        new("GET", "/api/datasets/{id}/preview", Role.Viewer, () => Send(HttpMethod.Get, $"/api/datasets/{Ids.UnknownGuid}/preview"),
            HttpStatusCode.NotFound, a => Send(HttpMethod.Get, $"/api/datasets/{a.DatasetId}/preview")),
        new("DELETE", "/api/datasets/{id}", Role.Member, () => Send(HttpMethod.Delete, $"/api/datasets/{Ids.UnknownGuid}"), HttpStatusCode.NotFound,
            a => Send(HttpMethod.Delete, $"/api/datasets/{a.DatasetId}")),

        new("POST", "/api/jobs", Role.Member, () => Json(HttpMethod.Post, "/api/jobs", "{}"), HttpStatusCode.BadRequest),
        new("GET", "/api/jobs", Role.Viewer, () => Send(HttpMethod.Get, "/api/jobs"), HttpStatusCode.OK),
        new("GET", "/api/jobs/{id}", Role.Viewer, () => Send(HttpMethod.Get, $"/api/jobs/{Ids.UnknownGuid}"), HttpStatusCode.NotFound,
            a => Send(HttpMethod.Get, $"/api/jobs/{a.JobId}")),
        new("POST", "/api/jobs/{id}/cancel", Role.Member, () => Send(HttpMethod.Post, $"/api/jobs/{Ids.UnknownGuid}/cancel"), HttpStatusCode.NotFound,
            a => Send(HttpMethod.Post, $"/api/jobs/{a.JobId}/cancel")),
        new("POST", "/api/jobs/{id}/retry", Role.Member, () => Send(HttpMethod.Post, $"/api/jobs/{Ids.UnknownGuid}/retry"), HttpStatusCode.NotFound,
            a => Send(HttpMethod.Post, $"/api/jobs/{a.JobId}/retry")),
        new("GET", "/api/jobs/{id}/model", Role.Viewer, () => Send(HttpMethod.Get, $"/api/jobs/{Ids.UnknownGuid}/model"), HttpStatusCode.NotFound,
            a => Send(HttpMethod.Get, $"/api/jobs/{a.JobId}/model")),
        new("POST", "/api/jobs/{id}/predict", Role.Viewer, () => Json(HttpMethod.Post, $"/api/jobs/{Ids.UnknownGuid}/predict", PredictBody),
            HttpStatusCode.NotFound, a => Json(HttpMethod.Post, $"/api/jobs/{a.JobId}/predict", PredictBody)),
        new("GET", "/api/jobs/{id}/history", Role.Viewer, () => Send(HttpMethod.Get, $"/api/jobs/{Ids.UnknownGuid}/history"), HttpStatusCode.NotFound,
            a => Send(HttpMethod.Get, $"/api/jobs/{a.JobId}/history")),
        new("GET", "/api/jobs/{id}/history/stream", Role.Viewer, () => Send(HttpMethod.Get, $"/api/jobs/{Ids.UnknownGuid}/history/stream"),
            HttpStatusCode.NotFound, a => Send(HttpMethod.Get, $"/api/jobs/{a.JobId}/history/stream")),
        new("GET", "/api/histories", Role.Viewer, () => Send(HttpMethod.Get, "/api/histories"), HttpStatusCode.BadRequest,
            a => Send(HttpMethod.Get, $"/api/histories?jobIds={a.JobId}")),

        new("POST", "/api/sweeps", Role.Member, () => Json(HttpMethod.Post, "/api/sweeps", "{}"), HttpStatusCode.BadRequest),
        new("GET", "/api/sweeps", Role.Viewer, () => Send(HttpMethod.Get, "/api/sweeps"), HttpStatusCode.OK),
        new("GET", "/api/sweeps/{id}", Role.Viewer, () => Send(HttpMethod.Get, $"/api/sweeps/{Ids.UnknownGuid}"), HttpStatusCode.NotFound,
            a => Send(HttpMethod.Get, $"/api/sweeps/{a.SweepId}")),
        new("GET", "/api/sweeps/{id}/trials", Role.Viewer, () => Send(HttpMethod.Get, $"/api/sweeps/{Ids.UnknownGuid}/trials"), HttpStatusCode.NotFound,
            a => Send(HttpMethod.Get, $"/api/sweeps/{a.SweepId}/trials")),
        new("GET", "/api/sweeps/{id}/losses", Role.Viewer, () => Send(HttpMethod.Get, $"/api/sweeps/{Ids.UnknownGuid}/losses"), HttpStatusCode.NotFound,
            a => Send(HttpMethod.Get, $"/api/sweeps/{a.SweepId}/losses")),
        new("POST", "/api/sweeps/{id}/cancel", Role.Member, () => Send(HttpMethod.Post, $"/api/sweeps/{Ids.UnknownGuid}/cancel"), HttpStatusCode.NotFound,
            a => Send(HttpMethod.Post, $"/api/sweeps/{a.SweepId}/cancel")),

        new("GET", "/api/losses", Role.Viewer, () => Send(HttpMethod.Get, "/api/losses"), HttpStatusCode.OK),
        new("POST", "/api/losses/evaluate", Role.Viewer, () => Json(HttpMethod.Post, "/api/losses/evaluate", "{}"), HttpStatusCode.BadRequest),
    ];

    private const string PredictBody = """{"rows":[{"x1":0.5,"x2":0.5}]}""";

    private static readonly string[] Methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    [Fact]
    public async Task Every_route_in_the_OpenAPI_document_has_exactly_one_row_in_the_matrix()
    {
        using var anonymous = service.CreateClient(null);
        var document = await anonymous.GetJsonAsync("/swagger/v1/swagger.json");
        var documented = document["paths"]!.AsObject()
            .SelectMany(path => path.Value!.AsObject().Select(operation => operation.Key).Where(Methods.Contains)
                .Select(method => $"{method.ToUpperInvariant()} {path.Key}"))
            .ToHashSet();
        var rows = Routes.Select(r => r.Route).ToList();

        Assert.True(documented.Count > 0, "The OpenAPI document lists no operations.");
        Assert.Empty(rows.GroupBy(r => r).Where(g => g.Count() > 1).Select(g => g.Key));
        var withoutRow = documented.Except(rows).Order().ToList();
        Assert.True(withoutRow.Count == 0, $"Routes in the OpenAPI document without a row in the matrix: {string.Join(", ", withoutRow)}");
        var withoutRoute = rows.Except(documented).Order().ToList();
        Assert.True(withoutRoute.Count == 0, $"Rows of the matrix for routes the OpenAPI document no longer has: {string.Join(", ", withoutRoute)}");
    }

    /// <summary>A kind of caller: its key (null: none), its role in tenant A (null: no valid key), and whether it is of another tenant.</summary>
    private sealed record Column(string Name, string? Key, Role? Role, bool OtherTenant = false);

    [Fact]
    public async Task Every_route_answers_every_kind_of_caller_as_the_matrix_says()
    {
        var (columns, tenantA) = await ArrangeAsync();
        var failures = new List<string>();
        foreach (var row in Routes)
        {
            foreach (var column in columns)
            {
                var (expected, code, request) = Expect(row, column, tenantA);
                using var client = service.CreateClient(column.Key);
                using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
                string body = response.StatusCode == HttpStatusCode.OK && row.Path.EndsWith("/stream", StringComparison.Ordinal)
                    ? "(stream)" : await response.Content.ReadAsStringAsync();
                if (Check(response, body, expected, code, row) is { } failure)
                {
                    failures.Add($"{row.Route} × {column.Name}: {failure}");
                }
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} cells differ from the matrix:\n{string.Join("\n", failures)}");
        // Tenant A's resources survived the other tenant's deletes, cancels and revocations.
        using var viewerA = service.CreateClient(columns.Single(c => c.Name == "viewer").Key);
        await viewerA.GetJsonAsync($"/api/datasets/{tenantA.DatasetId}");
        Assert.Equal("succeeded", (string?)(await viewerA.GetJsonAsync($"/api/jobs/{tenantA.JobId}"))["status"]);
    }

    /// <summary>What a cell expects: the status, the problem code when it is a refusal, and the request to send.</summary>
    private static (HttpStatusCode Status, string? Code, HttpRequestMessage Request) Expect(Row row, Column column, Ids tenantA)
    {
        if (row.Role is null)
        {
            return (row.Allowed, null, row.Harmless());
        }
        if (column.Role is null)
        {
            return (HttpStatusCode.Unauthorized, column.Key is null ? "auth.missing_key" : "auth.invalid_key", row.Harmless());
        }
        if (column.Role < row.Role)
        {
            return (HttpStatusCode.Forbidden, "auth.forbidden", row.Harmless());
        }
        return column.OtherTenant && row.OfTenantA is { } ofTenantA
            ? (HttpStatusCode.NotFound, null, ofTenantA(tenantA))
            : (row.Allowed, null, row.Harmless());
    }

    private static string? Check(HttpResponseMessage response, string body, HttpStatusCode expected, string? code, Row row)
    {
        if (response.StatusCode != expected)
        {
            return $"expected {(int)expected}, got {(int)response.StatusCode}: {body[..Math.Min(body.Length, 300)]}";
        }
        if (code is null)
        {
            return null;
        }
        var problem = JsonNode.Parse(body);
        if ((string?)problem?["code"] != code)
        {
            return $"expected code {code}: {body}";
        }
        if (expected == HttpStatusCode.Unauthorized && !response.Headers.WwwAuthenticate.Any())
        {
            return "a 401 without WWW-Authenticate";
        }
        if (expected == HttpStatusCode.Forbidden && (string?)problem!["requiredRole"] != row.Role!.Value.ToString().ToLowerInvariant())
        {
            return $"expected requiredRole {row.Role}: {body}";
        }
        return null;
    }

    /// <summary>Tenant A (with keys of each role, a dataset, a finished job) and tenant B (an admin key), and one column per kind of caller.</summary>
    private async Task<(List<Column> Columns, Ids TenantA)> ArrangeAsync()
    {
        var owner = service.Client;
        string a = Tenants.NewName("matrix-a"), b = Tenants.NewName("matrix-b");
        var viewer = await Tenants.CreateKeyAsync(owner, a, "viewer");
        var member = await Tenants.CreateKeyAsync(owner, a, "member");
        var admin = await Tenants.CreateKeyAsync(owner, a, "admin");
        var otherAdmin = await Tenants.CreateKeyAsync(owner, b, "admin");
        var revoked = await Tenants.CreateKeyAsync(owner, a, "admin", "to revoke");
        Assert.Equal(HttpStatusCode.OK, (await owner.DeleteAsync($"/api/keys/{revoked.Id}")).StatusCode);

        using var memberClient = service.CreateClient(member.Key);
        var dataset = await memberClient.UploadAsync(TestData.Linear(200, seed: 1201));
        var job = await memberClient.SubmitAsync(TestData.LinearSpec(dataset.Id(), epochs: 2));
        Assert.Equal("succeeded", (string?)(await memberClient.WaitForEndAsync(job.Id()))["status"]);
        var sweep = await Api.ReadAsync(await memberClient.PostAsJsonAsync("/api/sweeps", new
        {
            @base = TestData.LinearSpec(dataset.Id(), epochs: 2),
            parameters = new { seed = new { values = new[] { 1 } } },
            method = "grid",
            objective = new { metric = "trainLoss" },
        }), HttpStatusCode.Accepted);

        var columns = new List<Column>
        {
            new("no key", null, null),
            new("malformed key", "ts_not-a-key", null),
            new("wrong secret", $"ts_{viewer.Id}_{new string('A', 43)}", null),
            new("revoked key", revoked.Key, null),
            new("other tenant's admin", otherAdmin.Key, Role.Admin, OtherTenant: true),
            new("viewer", viewer.Key, Role.Viewer),
            new("member", member.Key, Role.Member),
            new("admin", admin.Key, Role.Admin),
            new("owner", ServiceFixture.OwnerKey, Role.Owner),
        };
        return (columns, new Ids(dataset.Id(), job.Id(), viewer.Id, sweep.Id()));
    }

    private static HttpRequestMessage Send(HttpMethod method, string url) => new(method, url);

    private static HttpRequestMessage Json(HttpMethod method, string url, string json) =>
        new(method, url) { Content = new StringContent(json, Encoding.UTF8, "application/json") };

    private static HttpRequestMessage Csv(string csv) =>
        new(HttpMethod.Post, "/api/datasets") { Content = new StringContent(csv, Encoding.UTF8, "text/csv") };
}
