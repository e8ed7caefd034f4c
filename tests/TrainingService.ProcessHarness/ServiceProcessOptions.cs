namespace TrainingService.ProcessHarness;

/// <summary>How <see cref="ServiceProcess.Start"/> configures the process and the client that talks to it.</summary>
public sealed record ServiceProcessOptions
{
    /// <summary>Configuration keys and values, passed as environment variables (<c>Jobs:MaxEpochs</c> → <c>Jobs__MaxEpochs</c>).</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    /// <summary>The timeout of <see cref="ServiceProcess.Client"/>: a benchmark's uploads take minutes, a test's requests should not.</summary>
    public TimeSpan ClientTimeout { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>Copies each line the process writes to standard error to this process's, prefixed with the role.</summary>
    public bool EchoStandardError { get; init; }

    /// <summary>Command-line arguments after <c>--role &lt;role&gt;</c>, e.g. <c>--create-owner-key</c> or <c>--urls …</c> (which wins over the harness's own address).</summary>
    public IReadOnlyList<string> Arguments { get; init; } = [];

    /// <summary>The build of the server to run (<c>src/TrainingService.Server/bin/&lt;Configuration&gt;</c>); by default the caller's own.</summary>
    public string? Configuration { get; init; }
}
