using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace TrainingService.Server.Tests;

/// <summary>
/// The repository's size rule, checked on the source itself: no method, constructor, local function, operator or accessor
/// runs over 60 lines, counted from its signature line (attributes and doc comments excluded) to its closing brace.
/// </summary>
public sealed class CodeShapeTests
{
    private const int MaxLines = 60;

    private static readonly CSharpParseOptions Options = CSharpParseOptions.Default.WithLanguageVersion(LanguageVersion.Preview);

    /// <summary>Generated or foreign code the rule does not apply to.</summary>
    private static readonly string[] SkippedFolders = ["obj", "bin", "Migrations"];

    [Fact]
    public void No_body_under_src_or_bench_is_longer_than_60_lines()
    {
        string root = RepositoryRoot();
        var files = new[] { "src", "bench" }
            .Select(folder => Path.Combine(root, folder))
            .Where(Directory.Exists)
            .SelectMany(folder => Directory.EnumerateFiles(folder, "*.cs", SearchOption.AllDirectories))
            .Where(file => !Path.GetRelativePath(root, file).Split(Path.DirectorySeparatorChar).Any(SkippedFolders.Contains))
            .Order(StringComparer.Ordinal)
            .ToList();

        var tooLong = files
            .SelectMany(file => LongBodies(File.ReadAllText(file), Path.GetRelativePath(root, file).Replace('\\', '/')))
            .ToList();

        Assert.True(files.Count >= 50, $"only {files.Count} source files found under {root}");
        Assert.True(tooLong.Count == 0,
            $"{tooLong.Count} bodies longer than {MaxLines} lines:\n" + string.Join("\n", tooLong));
    }

    [Fact]
    public void The_check_counts_from_the_signature_line_to_the_closing_brace_of_every_kind_of_body()
    {
        // Each sample spans 61 lines from its signature, except Fits (60) and the constructor, whose 61-line local function
        // makes it 64. Attributes and doc comments above a signature do not count.
        var source = new StringBuilder("class Sample\n{\n");
        source.Append("    [System.Obsolete]\n    /// <summary>Not counted.</summary>\n    void Long()\n    {\n").Append(Statements(58)).Append("    }\n");
        source.Append("    [System.Obsolete]\n    void Fits()\n    {\n").Append(Statements(57)).Append("    }\n");
        source.Append("    int Arrow() =>\n").Append(string.Concat(Enumerable.Repeat("        1 +\n", 59))).Append("        1;\n");
        source.Append("    Sample()\n    {\n        void Local()\n        {\n").Append(Statements(58)).Append("        }\n    }\n");
        source.Append("    int Property\n    {\n        get\n        {\n").Append(Statements(57)).Append("            return 0;\n        }\n    }\n");
        source.Append("    public static Sample operator +(Sample a, Sample b)\n    {\n").Append(Statements(58)).Append("    }\n");
        source.Append("    abstract void NoBody();\n}\n");
        string[] lines = source.ToString().Split('\n');

        var found = LongBodies(source.ToString(), "Sample.cs").ToList();

        Assert.Equal(
        [
            "Sample.Long is 61 lines",
            "Sample.Arrow is 61 lines",
            "Sample.Sample (constructor) is 64 lines",
            "Sample.Sample (constructor).Local (local function) is 61 lines",
            "Sample.Property.get is 61 lines",
            "Sample.operator + is 61 lines",
        ], found.Select(b => $"{b.Name} is {b.Lines} lines"));
        Assert.Equal(["void Long()", "int Arrow() =>", "Sample()", "void Local()", "get", "public static Sample operator +(Sample a, Sample b)"],
            found.Select(b => lines[b.Line - 1].Trim()));
        Assert.All(found, b => Assert.Equal("Sample.cs", b.File));
    }

    /// <summary>
    /// Which server folders each folder may name (docs/architecture.md): resource folders depend one way, Sweeps → Histories → Jobs
    /// → Datasets, Losses, Preprocessing → Datasets, and everything may use the shared Infrastructure, Configuration, Data and Compute.
    /// </summary>
    private static readonly Dictionary<string, string[]> AllowedDependencies = new()
    {
        ["Infrastructure"] = [],
        ["Configuration"] = [],
        ["Data"] = ["Configuration"],
        ["Compute"] = ["Configuration"],
        ["Access"] = ["Configuration", "Infrastructure", "Data"],
        ["Datasets"] = ["Configuration", "Infrastructure", "Data", "Access"],
        ["Losses"] = ["Configuration", "Infrastructure", "Compute", "Access"],
        ["Preprocessing"] = ["Datasets"],
        ["Jobs"] = ["Configuration", "Infrastructure", "Data", "Compute", "Access", "Datasets", "Losses", "Preprocessing"],
        ["Histories"] = ["Configuration", "Infrastructure", "Data", "Access", "Jobs"],
        ["Telemetry"] = ["Configuration", "Infrastructure", "Data", "Access", "Jobs"],
        ["Sweeps"] = ["Configuration", "Infrastructure", "Data", "Compute", "Access", "Jobs", "Histories"],
    };

    [Fact]
    public void Server_folders_depend_on_each_other_one_way_only()
    {
        string server = Path.Combine(RepositoryRoot(), "src", "TrainingService.Server");
        var folders = Directory.GetDirectories(server).Select(Path.GetFileName).Where(f => f is not ("bin" or "obj" or "wwwroot" or "Properties"))
            .Cast<string>().ToList();
        var violations = new List<string>();
        foreach (string folder in folders)
        {
            if (!AllowedDependencies.TryGetValue(folder, out var allowed))
            {
                violations.Add($"{folder}/ has no row in AllowedDependencies: decide what it may depend on");
                continue;
            }
            foreach (string file in Directory.EnumerateFiles(Path.Combine(server, folder), "*.cs", SearchOption.AllDirectories))
            {
                // Full names, and names relative to TrainingService.Server (Jobs.JobStore from inside another folder).
                string code = System.Text.RegularExpressions.Regex.Replace(File.ReadAllText(file), @"<c>.*?</c>", "");
                var named = System.Text.RegularExpressions.Regex.Matches(code, @"TrainingService\.Server\.(\w+)|(?<![\w.])(\w+)\.[A-Z]")
                    .Select(m => m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value).Where(n => n != folder && folders.Contains(n) && !allowed.Contains(n)).Distinct();
                violations.AddRange(named.Select(n => $"{Path.GetRelativePath(server, file)} names {n}"));
            }
        }
        Assert.True(violations.Count == 0, string.Join("\n", violations));
    }

    /// <summary>The folder holding TrainingService.sln, found by walking up from the test binaries.</summary>
    private static string RepositoryRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "TrainingService.sln")))
            {
                return folder.FullName;
            }
        }
        throw new InvalidOperationException($"No TrainingService.sln above {AppContext.BaseDirectory}.");
    }

    private static string Statements(int count) => string.Concat(Enumerable.Repeat("            System.Console.WriteLine();\n", count));

    /// <summary>One body over the limit: where its signature starts, what it is, and how many lines it spans.</summary>
    internal sealed record LongBody(string File, int Line, string Name, int Lines)
    {
        public override string ToString() => $"{File}:{Line} {Name} is {Lines} lines";
    }

    internal static IEnumerable<LongBody> LongBodies(string source, string path)
    {
        var tree = CSharpSyntaxTree.ParseText(source, Options, path);
        foreach (var node in tree.GetRoot().DescendantNodes())
        {
            if (!HasBody(node))
            {
                continue;
            }
            int first = SignatureStart(node).GetLocation().GetLineSpan().StartLinePosition.Line;
            int last = node.GetLastToken().GetLocation().GetLineSpan().EndLinePosition.Line;
            int lines = last - first + 1;
            if (lines > MaxLines)
            {
                yield return new LongBody(path, first + 1, QualifiedName(node), lines);
            }
        }
    }

    private static bool HasBody(SyntaxNode node) => node switch
    {
        BaseMethodDeclarationSyntax m => m.Body is not null || m.ExpressionBody is not null,
        LocalFunctionStatementSyntax f => f.Body is not null || f.ExpressionBody is not null,
        AccessorDeclarationSyntax a => a.Body is not null || a.ExpressionBody is not null,
        PropertyDeclarationSyntax p => p.ExpressionBody is not null,
        IndexerDeclarationSyntax i => i.ExpressionBody is not null,
        _ => false,
    };

    /// <summary>The first token after the attributes: doc comments are trivia, so they are left out too.</summary>
    private static SyntaxToken SignatureStart(SyntaxNode node)
    {
        var attributes = node switch
        {
            MemberDeclarationSyntax m => m.AttributeLists,
            LocalFunctionStatementSyntax f => f.AttributeLists,
            AccessorDeclarationSyntax a => a.AttributeLists,
            _ => default,
        };
        return attributes.Count == 0 ? node.GetFirstToken() : attributes.Last().GetLastToken().GetNextToken();
    }

    private static string QualifiedName(SyntaxNode node)
    {
        var owners = node.Ancestors().Reverse().Select(OwnName).OfType<string>();
        return string.Join(".", owners.Append(OwnName(node) ?? node.Kind().ToString()));
    }

    private static string? OwnName(SyntaxNode node) => node switch
    {
        BaseTypeDeclarationSyntax t => t.Identifier.Text,
        MethodDeclarationSyntax m => m.Identifier.Text,
        ConstructorDeclarationSyntax c => c.Identifier.Text + " (constructor)",
        DestructorDeclarationSyntax d => "~" + d.Identifier.Text,
        OperatorDeclarationSyntax o => "operator " + o.OperatorToken.Text,
        ConversionOperatorDeclarationSyntax c => "operator " + c.Type,
        LocalFunctionStatementSyntax f => f.Identifier.Text + " (local function)",
        PropertyDeclarationSyntax p => p.ExpressionBody is null ? p.Identifier.Text : p.Identifier.Text + ".get",
        IndexerDeclarationSyntax i => i.ExpressionBody is null ? "this[]" : "this[].get",
        EventDeclarationSyntax e => e.Identifier.Text,
        AccessorDeclarationSyntax a => a.Keyword.Text,
        _ => null,
    };
}
