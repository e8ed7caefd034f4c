using YamlDotNet.RepresentationModel;

namespace TrainingService.Server.Tests.Infrastructure;

/// <summary>One YAML document of a file under deploy/kubernetes.</summary>
public sealed record Manifest(string File, YamlMappingNode Root)
{
    public string Kind => Yaml.Text(Root, "kind") ?? "";
    public string Name => Yaml.Text(Root, "metadata", "name") ?? "";
    public override string ToString() => $"{Kind}/{Name} ({File})";
}

/// <summary>A container of a Deployment's or Job's pod template, with the workload it belongs to.</summary>
public sealed record Container(Manifest Workload, YamlMappingNode Node)
{
    public string Name => Yaml.Text(Node, "name") ?? "";
    public IReadOnlyList<string> Args => Yaml.Items(Node, "args").Select(a => ((YamlScalarNode)a).Value ?? "").ToList();

    /// <summary>Literal environment variables (those from a Secret are left out).</summary>
    public IReadOnlyDictionary<string, string> Env => Yaml.Items(Node, "env")
        .Where(e => Yaml.Text(e, "value") is not null)
        .ToDictionary(e => Yaml.Text(e, "name")!, e => Yaml.Text(e, "value")!);

    public override string ToString() => $"{Workload.Kind}/{Workload.Name} container {Name}";
}

/// <summary>deploy/kubernetes read as YAML: every document of every file, and what the kustomizations deploy.</summary>
public sealed class KubernetesManifests
{
    public const string Folder = "deploy/kubernetes";

    public KubernetesManifests()
    {
        Root = FindRepositoryRoot();
        string folder = Path.Combine(Root, Folder);
        Files = Directory.EnumerateFiles(folder, "*.yaml", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        Documents = Files.SelectMany(Load).ToList();
        Kustomizations = Documents.Where(d => d.Kind == "Kustomization").ToList();
        ResourceFiles = Kustomizations
            .SelectMany(k => Yaml.Items(k.Root, "resources").Select(r => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(k.File)!, ((YamlScalarNode)r).Value!))))
            .Where(File.Exists)
            .ToHashSet();
        Resources = Documents.Where(d => ResourceFiles.Contains(d.File)).ToList();
    }

    public string Root { get; }
    public IReadOnlyList<string> Files { get; }
    public IReadOnlyList<Manifest> Documents { get; }
    public IReadOnlyList<Manifest> Kustomizations { get; }

    /// <summary>Files some kustomization lists under <c>resources</c>.</summary>
    public IReadOnlySet<string> ResourceFiles { get; }

    /// <summary>The objects an overlay applies (documents of <see cref="ResourceFiles"/>).</summary>
    public IReadOnlyList<Manifest> Resources { get; }

    public IEnumerable<Manifest> OfKind(string kind) => Resources.Where(r => r.Kind == kind);

    /// <summary>Every container (and init container) of every Deployment and Job.</summary>
    public IEnumerable<Container> Containers => Resources
        .Where(r => r.Kind is "Deployment" or "Job")
        .SelectMany(w => new[] { "containers", "initContainers" }
            .SelectMany(list => Yaml.Items(w.Root, "spec", "template", "spec", list))
            .Select(c => new Container(w, (YamlMappingNode)c)));

    public string Relative(string file) => Path.GetRelativePath(Root, file).Replace('\\', '/');

    /// <summary>Every document of one file (a file may hold several, separated by <c>---</c>).</summary>
    public static IEnumerable<Manifest> Load(string file)
    {
        using var reader = new StreamReader(file);
        var stream = new YamlStream();
        stream.Load(reader);
        return stream.Documents.Select(d => new Manifest(file, (YamlMappingNode)d.RootNode)).ToList();
    }

    /// <summary>Every document of a YAML text, e.g. <c>kubectl kustomize</c>'s output.</summary>
    public static IReadOnlyList<YamlMappingNode> Parse(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return stream.Documents.Select(d => (YamlMappingNode)d.RootNode).ToList();
    }

    private static string FindRepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "TrainingService.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException($"No TrainingService.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>Small readers over YamlDotNet's node tree.</summary>
public static class Yaml
{
    /// <summary>The node at a path of mapping keys, or null where any key is missing.</summary>
    public static YamlNode? At(YamlNode node, params string[] path)
    {
        YamlNode? current = node;
        foreach (string key in path)
        {
            if (current is not YamlMappingNode mapping || !mapping.Children.TryGetValue(new YamlScalarNode(key), out current))
            {
                return null;
            }
        }
        return current;
    }

    public static string? Text(YamlNode node, params string[] path) => (At(node, path) as YamlScalarNode)?.Value;

    public static IEnumerable<YamlNode> Items(YamlNode node, params string[] path) =>
        At(node, path) is YamlSequenceNode sequence ? sequence.Children : [];

    public static IEnumerable<(string Key, YamlNode Value)> Entries(YamlNode node, params string[] path) =>
        At(node, path) is YamlMappingNode mapping ? mapping.Children.Select(c => (((YamlScalarNode)c.Key).Value!, c.Value)) : [];
}
