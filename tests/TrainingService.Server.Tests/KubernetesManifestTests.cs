using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Npgsql;
using TrainingService.Server.Configuration;
using TrainingService.Server.Data;
using TrainingService.Server.Infrastructure;
using TrainingService.Server.Jobs;
using TrainingService.ProcessHarness;
using TrainingService.Server.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace TrainingService.Server.Tests;

/// <summary>
/// deploy/kubernetes checked against the service itself: the paths it maps, the port the image listens on, the
/// shutdown its host waits for, the settings it accepts, and the schema its migrations create.
/// </summary>
public sealed class KubernetesManifestTests
{
    private const string SecretTemplate = "deploy/kubernetes/secret.example.yaml";
    private static readonly string[] ActiveStatuses = ["queued", "running", "cancelling"];
    private readonly KubernetesManifests _manifests = new();

    [Fact]
    public void Every_manifest_file_parses_and_every_object_has_a_kind_and_a_name()
    {
        Assert.True(_manifests.Files.Count >= 12, $"only {_manifests.Files.Count} YAML files under {KubernetesManifests.Folder}");
        Assert.All(_manifests.Documents, d =>
        {
            Assert.False(string.IsNullOrEmpty(Yaml.Text(d.Root, "apiVersion")), $"{_manifests.Relative(d.File)}: a document without apiVersion");
            Assert.False(string.IsNullOrEmpty(d.Kind), $"{_manifests.Relative(d.File)}: a document without kind");
            Assert.True(d.Kind == "Kustomization" || d.Name.Length > 0, $"{d}: no metadata.name");
        });
    }

    [Fact]
    public void Every_file_is_deployed_by_a_kustomization_except_the_secret_template()
    {
        Assert.Equal(3, _manifests.Kustomizations.Count); // base, overlays/cpu-only, overlays/gpu
        foreach (var kustomization in _manifests.Kustomizations)
        {
            string folder = Path.GetDirectoryName(kustomization.File)!;
            Assert.All(Yaml.Items(kustomization.Root, "resources").Select(r => ((YamlScalarNode)r).Value!), resource =>
            {
                string path = Path.Combine(folder, resource);
                Assert.True(File.Exists(path) || File.Exists(Path.Combine(path, "kustomization.yaml")),
                    $"{_manifests.Relative(kustomization.File)} lists {resource}, which does not exist");
            });
        }
        var unlisted = _manifests.Files
            .Where(f => Path.GetFileName(f) != "kustomization.yaml" && !_manifests.ResourceFiles.Contains(f))
            .Select(_manifests.Relative);
        Assert.Equal([SecretTemplate], unlisted);
    }

    [Fact]
    public void Every_container_requests_and_limits_cpu_and_memory()
    {
        var containers = _manifests.Containers.ToList();
        Assert.True(containers.Count >= 4, "expected the API, two worker pools and the migration Job");
        Assert.All(containers, c =>
        {
            foreach (string resource in new[] { "cpu", "memory" })
            {
                string? request = Yaml.Text(c.Node, "resources", "requests", resource), limit = Yaml.Text(c.Node, "resources", "limits", resource);
                Assert.True(request is not null && limit is not null, $"{c}: no {resource} request or limit");
                Assert.True(Quantity(request!) <= Quantity(limit!), $"{c}: {resource} request {request} above its limit {limit}");
            }
        });
    }

    /// <summary>The health paths are what <see cref="ApiSetup.UseApiBasics"/> maps, which Program.cs calls for every role.</summary>
    [Fact]
    public async Task Every_probe_asks_a_path_every_role_maps_on_the_port_the_image_listens_on()
    {
        var builder = WebApplication.CreateBuilder();
        builder.Services.AddApiBasics();
        await using var app = builder.Build();
        app.UseApiBasics();
        var mapped = ((IEndpointRouteBuilder)app).DataSources.SelectMany(s => s.Endpoints).OfType<RouteEndpoint>()
            .Select(e => "/" + e.RoutePattern.RawText!.TrimStart('/')).ToHashSet();
        int imagePort = ImagePort();

        var probes = _manifests.Containers.SelectMany(c => new[] { "startupProbe", "livenessProbe", "readinessProbe" }
            .Where(p => Yaml.At(c.Node, p) is not null).Select(p => (Container: c, Probe: p))).ToList();
        Assert.All(_manifests.Containers.Where(c => c.Workload.Kind == "Deployment"), c =>
        {
            Assert.True(Yaml.At(c.Node, "livenessProbe") is not null && Yaml.At(c.Node, "readinessProbe") is not null, $"{c}: no liveness or readiness probe");
        });
        Assert.All(probes, p =>
        {
            string? path = Yaml.Text(p.Container.Node, p.Probe, "httpGet", "path");
            Assert.True(path is not null && mapped.Contains(path), $"{p.Container} {p.Probe}: {path ?? "(no httpGet path)"} is not one of {string.Join(", ", mapped)}");
            Assert.Equal(imagePort, ContainerPort(p.Container, Yaml.Text(p.Container.Node, p.Probe, "httpGet", "port")!));
        });
        Assert.Contains(probes, p => Yaml.Text(p.Container.Node, p.Probe, "httpGet", "path") == "/health/ready");
        foreach (var service in _manifests.OfKind("Service"))
        {
            var api = _manifests.Containers.Single(c => c.Args.SequenceEqual(["--role", "api"]));
            Assert.All(Yaml.Items(service.Root, "spec", "ports"), port => Assert.Equal(imagePort, ContainerPort(api, Yaml.Text(port, "targetPort")!)));
        }
    }

    /// <summary>
    /// On SIGTERM the host waits its <see cref="HostOptions.ShutdownTimeout"/> (for a worker: Worker:ShutdownTimeout plus
    /// what <see cref="JobQueue.AddJobQueue"/> adds); the kubelet's SIGKILL must come after it. Read from the service's own
    /// registrations with each Deployment's settings, so the test follows both.
    /// </summary>
    [Fact]
    public void Every_deployments_grace_period_outlasts_its_hosts_shutdown()
    {
        var deployments = _manifests.Containers.Where(c => c.Workload.Kind == "Deployment").ToList();
        Assert.Contains(deployments, c => c.Args.Contains("worker"));
        Assert.All(deployments, c =>
        {
            using var provider = ServicesOf(c);
            var role = Configuration(c).ReadServiceOptions();
            var shutdown = provider.GetRequiredService<IOptions<HostOptions>>().Value.ShutdownTimeout;
            int grace = int.Parse(Yaml.Text(c.Workload.Root, "spec", "template", "spec", "terminationGracePeriodSeconds") ?? "30", CultureInfo.InvariantCulture);
            Assert.True(TimeSpan.FromSeconds(grace) > shutdown, $"{c} ({role.Role}): terminationGracePeriodSeconds {grace} does not outlast the host's shutdown of {shutdown.TotalSeconds} s");
            if (role.RunsJobs)
            {
                Assert.True(shutdown > provider.GetRequiredService<IOptions<WorkerOptions>>().Value.ShutdownTimeout);
            }
        });
    }

    /// <summary>Every literal setting a container is given binds to the service's options and passes their validation.</summary>
    [Fact]
    public void Every_setting_in_the_manifests_is_one_the_service_accepts()
    {
        Assert.All(_manifests.Containers, c =>
        {
            using var provider = ServicesOf(c);
            Configuration(c).ReadServiceOptions();
            _ = provider.GetRequiredService<IOptions<WorkerOptions>>().Value;
            _ = provider.GetRequiredService<IOptions<ComputeOptions>>().Value;
            _ = provider.GetRequiredService<IOptions<DatasetOptions>>().Value;
        });
    }

    [Fact]
    public void The_gpu_pool_requests_a_gpu_on_gpu_nodes_and_nothing_else_does()
    {
        var gpu = _manifests.Containers.Where(c => c.Env.GetValueOrDefault("Compute__Device") == "cuda").ToList();
        var worker = Assert.Single(gpu);
        Assert.Contains("worker", worker.Args);
        Assert.True(int.Parse(Yaml.Text(worker.Node, "resources", "limits", "nvidia.com/gpu") ?? "0", CultureInfo.InvariantCulture) >= 1,
            $"{worker}: no nvidia.com/gpu limit");
        var pod = Yaml.At(worker.Workload.Root, "spec", "template", "spec")!;
        Assert.NotEmpty(Yaml.Entries(pod, "nodeSelector"));
        Assert.Contains(Yaml.Items(pod, "tolerations"), t => Yaml.Text(t, "key") == "nvidia.com/gpu");
        Assert.All(_manifests.Containers.Except(gpu), c => Assert.Null(Yaml.At(c.Node, "resources", "limits", "nvidia.com/gpu")));
    }

    [Fact]
    public void Only_the_migration_job_migrates()
    {
        var job = Assert.Single(_manifests.OfKind("Job"));
        Assert.Contains("--migrate", Assert.Single(_manifests.Containers, c => c.Workload == job).Args);
        Assert.All(_manifests.Containers.Where(c => c.Workload.Kind == "Deployment"),
            c => Assert.Equal("false", c.Env.GetValueOrDefault("Database__MigrateAtStart")));
    }

    [Fact]
    public void Every_secret_reference_names_a_key_of_the_secret_template()
    {
        var secret = Assert.Single(KubernetesManifests.Load(Path.Combine(_manifests.Root, SecretTemplate)));
        var keys = Yaml.Entries(secret.Root, "stringData").Select(e => e.Key).ToHashSet();
        var references = _manifests.Containers
            .SelectMany(c => Yaml.Items(c.Node, "env").Select(e => Yaml.At(e, "valueFrom", "secretKeyRef")).OfType<YamlMappingNode>())
            .Concat(_manifests.OfKind("TriggerAuthentication").SelectMany(t => Yaml.Items(t.Root, "spec", "secretTargetRef")))
            .ToList();
        Assert.NotEmpty(references);
        Assert.All(references, r =>
        {
            Assert.Equal(secret.Name, Yaml.Text(r, "name"));
            Assert.Contains(Yaml.Text(r, "key") ?? "(no key)", keys);
        });
    }

    [Fact]
    public void Every_pool_scales_to_zero_with_one_pod_per_worker_slot()
    {
        var scaled = _manifests.OfKind("ScaledObject").ToList();
        Assert.Equal(2, scaled.Count);
        Assert.All(scaled, s =>
        {
            Assert.Equal("0", Yaml.Text(s.Root, "spec", "minReplicaCount"));
            var target = Assert.Single(_manifests.Containers, c => c.Workload.Kind == "Deployment" && c.Workload.Name == Yaml.Text(s.Root, "spec", "scaleTargetRef", "name"));
            Assert.True(Yaml.At(target.Workload.Root, "spec", "replicas") is null, $"{target.Workload}: a replica count would undo KEDA's scaling on every apply");
            var trigger = Assert.Single(Yaml.Items(s.Root, "spec", "triggers"));
            Assert.Equal("postgresql", Yaml.Text(trigger, "type"));
            Assert.Contains(_manifests.OfKind("TriggerAuthentication"), a => a.Name == Yaml.Text(trigger, "authenticationRef", "name"));
            using var provider = ServicesOf(target);
            int slots = provider.GetRequiredService<IOptions<WorkerOptions>>().Value.WorkerCount;
            Assert.Equal(slots, int.Parse(Yaml.Text(trigger, "metadata", "targetQueryValue")!, CultureInfo.InvariantCulture));
        });
    }

    /// <summary>
    /// Each pool's query on a database the migrations made, with jobs of every device in every status: the GPU pool counts
    /// cuda jobs, the CPU pool cpu and any jobs (so an any job never wakes a GPU node), each queued or running.
    /// </summary>
    [Fact]
    public async Task Every_scaler_query_counts_its_pools_jobs_on_the_migrated_schema()
    {
        await using var database = await TestDatabase.CreateAsync();
        await MigrateAsync(database.ConnectionString);
        string[] devices = [ComputePools.Cuda, ComputePools.Cpu, ComputePools.Any];
        string[] statuses = ["queued", "running", "cancelling", "succeeded", "failed", "cancelled"];
        var counts = new Dictionary<(string Device, string Status), int>();
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        for (int d = 0; d < devices.Length; d++)
        {
            for (int s = 0; s < statuses.Length; s++)
            {
                counts[(devices[d], statuses[s])] = 1 + d + devices.Length * s; // every pair a different count
                await InsertJobsAsync(connection, devices[d], statuses[s], counts[(devices[d], statuses[s])]);
            }
        }

        var scaled = _manifests.OfKind("ScaledObject").ToList();
        Assert.Equal(2, scaled.Count);
        foreach (var s in scaled)
        {
            var target = _manifests.Containers.Single(c => c.Workload.Kind == "Deployment" && c.Workload.Name == Yaml.Text(s.Root, "spec", "scaleTargetRef", "name"));
            string[] served = target.Env["Compute__Device"] == "cuda" ? [ComputePools.Cuda] : [ComputePools.Cpu, ComputePools.Any];
            long expected = counts.Where(c => served.Contains(c.Key.Device) && ActiveStatuses.Contains(c.Key.Status)).Sum(c => c.Value);
            await using var query = new NpgsqlCommand(Yaml.Text(Assert.Single(Yaml.Items(s.Root, "spec", "triggers")), "metadata", "query"), connection);
            Assert.Equal(expected, Convert.ToInt64(await query.ExecuteScalarAsync(), CultureInfo.InvariantCulture));
        }
    }

    /// <summary>kubectl's built-in kustomize renders each overlay: every object in the namespace, every image tagged.</summary>
    [SkippableFact]
    public void Every_overlay_renders_with_kubectl_kustomize()
    {
        Skip.If(FindOnPath("kubectl") is null, "kubectl is not installed (Debian: kubernetes-client); the overlays were not rendered");
        foreach (string overlay in new[] { "cpu-only", "gpu" })
        {
            var objects = KubernetesManifests.Parse(Kubectl("kustomize", Path.Combine(_manifests.Root, KubernetesManifests.Folder, "overlays", overlay)));
            var kinds = objects.Select(o => Yaml.Text(o, "kind")).ToList();
            Assert.Equal(overlay == "gpu" ? 2 : 1, kinds.Count(k => k == "ScaledObject"));
            Assert.Equal(overlay == "gpu" ? 3 : 2, kinds.Count(k => k == "Deployment"));
            Assert.Contains("Job", kinds);
            Assert.All(objects.Where(o => Yaml.Text(o, "kind") != "Namespace"), o => Assert.Equal("trainingservice", Yaml.Text(o, "metadata", "namespace")));
            Assert.All(objects.SelectMany(o => Yaml.Items(o, "spec", "template", "spec", "containers")),
                c => Assert.Matches(":[^/]+$", Yaml.Text(c, "image")));
        }
    }

    private static IConfiguration Configuration(Container container)
    {
        var settings = container.Env.ToDictionary(e => e.Key.Replace("__", ":"), e => (string?)e.Value);
        settings["ConnectionStrings:Postgres"] = "Host=unused"; // from the Secret
        return new ConfigurationBuilder().AddInMemoryCollection(settings)
            .AddCommandLine(container.Args.ToArray(), new Dictionary<string, string> { ["--role"] = "Service:Role" }).Build();
    }

    /// <summary>The service's options and job queue registered as Program.cs does, with a container's settings.</summary>
    private static ServiceProvider ServicesOf(Container container)
    {
        var configuration = Configuration(container);
        var services = new ServiceCollection().AddSingleton(configuration).AddLogging();
        services.AddServiceOptions(configuration);
        services.AddJobQueue(configuration.ReadServiceOptions());
        return services.BuildServiceProvider();
    }

    private static async Task MigrateAsync(string connectionString)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["ConnectionStrings:Postgres"] = connectionString }).Build();
        var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration).AddLogging();
        services.AddServiceOptions(configuration);
        services.AddDatabase();
        await using var provider = services.BuildServiceProvider();
        await provider.MigrateDatabaseAsync();
    }

    private static async Task InsertJobsAsync(NpgsqlConnection connection, string device, string status, int count)
    {
        await using var insert = new NpgsqlCommand("""
            INSERT INTO jobs (id, tenant, spec, status, transitions, total_epochs, epochs_completed, seed, version, created_at, updated_at, compute_device)
            SELECT gen_random_uuid(), 'default', '{}', @status, '[]', 1, 0, 0, 0, now(), now(), @device FROM generate_series(1, @count)
            """, connection);
        insert.Parameters.AddWithValue("status", status);
        insert.Parameters.AddWithValue("device", device);
        insert.Parameters.AddWithValue("count", count);
        await insert.ExecuteNonQueryAsync();
    }

    /// <summary>The port of the Dockerfile's <c>Urls</c>, where every role's Kestrel listens.</summary>
    private int ImagePort()
    {
        var match = Regex.Match(File.ReadAllText(Path.Combine(_manifests.Root, "Dockerfile")), @"Urls=http://[^:\s]+:(\d+)");
        Assert.True(match.Success, "the Dockerfile sets no Urls");
        return int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    /// <summary>A probe's or Service's port, by number or by the name of one of the container's ports.</summary>
    private static int ContainerPort(Container container, string port) =>
        int.TryParse(port, CultureInfo.InvariantCulture, out int number)
            ? number
            : int.Parse(Yaml.Text(Yaml.Items(container.Node, "ports").Single(p => Yaml.Text(p, "name") == port), "containerPort")!, CultureInfo.InvariantCulture);

    /// <summary>CPU in cores ("500m", "2") or memory in bytes ("512Mi", "2Gi").</summary>
    private static double Quantity(string value)
    {
        var match = Regex.Match(value, @"^([0-9.]+)(m|Ki|Mi|Gi|Ti)?$");
        Assert.True(match.Success, $"unreadable quantity {value}");
        double number = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        return number * match.Groups[2].Value switch
        {
            "m" => 1e-3,
            "Ki" => 1024.0,
            "Mi" => 1024.0 * 1024,
            "Gi" => 1024.0 * 1024 * 1024,
            "Ti" => 1024.0 * 1024 * 1024 * 1024,
            _ => 1.0,
        };
    }

    private static string Kubectl(params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo("kubectl", arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"kubectl {string.Join(' ', arguments)} exited {process.ExitCode}: {error.Result}");
        return output;
    }

    private static string? FindOnPath(string command) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(folder => Path.Combine(folder, command)).FirstOrDefault(File.Exists);
}
