using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using nietras.SeparatedValues;
using TrainingService.ProcessHarness;

namespace TrainingService.Bench;

/// <summary>
/// <c>upload</c>: generates a numeric and a mixed numeric/categorical CSV (500 MB each by default), times Sep parsing each
/// alone (every cell read, numbers parsed), then uploads each through the HTTP API to a separate API process and reports
/// end-to-end MB/s (upload, parse, store in PostgreSQL) and the server's peak memory during the upload.
/// </summary>
internal static class UploadBenchmark
{
    private static readonly string[] Colours = ["red", "green", "blue", "cyan", "magenta", "yellow", "black", "white"];
    private static readonly string[] Cities = ["Lisbon", "Oslo", "Quito", "Lagos", "Perth", "Osaka", "Lima", "Cork", "Nice", "Bern"];

    public static async Task<int> RunAsync(string[] args)
    {
        int megabytes = CommandLine.Option(args, "--size-mb", 500);
        string directory = Path.Combine(Path.GetTempPath(), "trainingservice-bench");
        Directory.CreateDirectory(directory);
        var files = new[]
        {
            ("numeric", Generate(Path.Combine(directory, $"numeric-{megabytes}mb.csv"), megabytes, mixed: false)),
            ("mixed", Generate(Path.Combine(directory, $"mixed-{megabytes}mb.csv"), megabytes, mixed: true)),
        };
        await using var api = await BenchService.StartAsync("api", BenchService.Postgres(), new Dictionary<string, string>
        {
            ["Datasets:MaxUploadBytes"] = (4L << 30).ToString(CultureInfo.InvariantCulture),
            ["Logging:LogLevel:TrainingService.Server.Datasets"] = "Information", // the import's own split of its time
            ["Logging:Console:FormatterName"] = "simple",
        });
        Console.WriteLine($"API process: pid {api.Pid}, resident {api.ResidentMiB():F0} MiB after start");
        Console.WriteLine();
        Console.WriteLine("| file | size | rows | Sep parse alone | end to end (HTTP, parse, store) | ratio | server peak RSS during upload | server CPU |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (kind, path) in files)
        {
            double size = new FileInfo(path).Length / 1e6;
            var (parseSeconds, rows) = await ParseAloneAsync(path);
            double cpu = api.CpuSeconds();
            var (uploadSeconds, peak) = await UploadAsync(api, path, rows);
            cpu = api.CpuSeconds() - cpu;
            Console.WriteLine($"| {kind} | {size:F0} MB | {rows:N0} | {size / parseSeconds:F0} MB/s | {size / uploadSeconds:F0} MB/s | " +
                $"{parseSeconds / uploadSeconds:P0} | {peak:F0} MiB | {cpu:F1} s in {uploadSeconds:F1} s |");
        }
        Console.WriteLine();
        // The server's "Imported dataset … (x s reading and parsing, y s storing)" lines: where the end-to-end time goes.
        foreach (string line in api.Output.Split('\n').Where(l => l.Contains("Imported dataset", StringComparison.Ordinal)))
        {
            Console.WriteLine($"server: {line[line.IndexOf("Imported dataset", StringComparison.Ordinal)..].Trim()}");
        }
        Console.WriteLine();
        Console.WriteLine("goals: end to end at least 50% of the parse-alone speed; peak server memory under 300 MB for the 500 MB file");
        return 0;
    }

    /// <summary>Sep alone over the file: every cell visited, numeric cells parsed to double.</summary>
    private static async Task<(double Seconds, long Rows)> ParseAloneAsync(string path)
    {
        var clock = Stopwatch.StartNew();
        long rows = 0;
        double sum = 0;
        using var reader = await Sep.Reader(o => o with { HasHeader = true, Unescape = false }).FromFileAsync(path);
        await foreach (var row in reader)
        {
            for (int c = 0; c < row.ColCount; c++)
            {
                if (row[c].TryParse<double>() is double v)
                {
                    sum += v;
                }
                else
                {
                    sum += row[c].Span.Length;
                }
            }
            rows++;
        }
        GC.KeepAlive(sum);
        return (clock.Elapsed.TotalSeconds, rows);
    }

    private static async Task<(double Seconds, double PeakMiB)> UploadAsync(ServiceProcess api, string path, long rows)
    {
        GC.Collect();
        var watch = api.WatchPeak();
        var clock = Stopwatch.StartNew();
        await using var file = File.OpenRead(path);
        var content = new StreamContent(file, 1 << 16);
        content.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        var response = await api.Client.PostAsync($"/api/datasets?name={Path.GetFileName(path)}-{Guid.NewGuid():N}", content);
        double seconds = clock.Elapsed.TotalSeconds;
        double peak = await watch.StopAsync();
        string body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode || !body.Contains($"\"rowCount\":{rows}"))
        {
            throw new InvalidOperationException($"Upload failed: {(int)response.StatusCode} {body[..Math.Min(500, body.Length)]}");
        }
        return (seconds, peak);
    }

    /// <summary>Writes the file unless it exists: 10 numeric columns, or 6 numeric and 4 text (2 categorical, 1 boolean, 1 label).</summary>
    private static string Generate(string path, int megabytes, bool mixed)
    {
        if (File.Exists(path))
        {
            return path;
        }
        Console.Error.WriteLine($"generating {path}");
        var random = new Random(7);
        long target = megabytes * 1_000_000L;
        using var writer = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 20);
        writer.Write(mixed ? "a,b,c,d,e,f,colour,city,flag,label\n" : "a,b,c,d,e,f,g,h,i,j\n");
        var line = new StringBuilder();
        while (writer.BaseStream.Length < target)
        {
            line.Clear();
            int numeric = mixed ? 6 : 10;
            for (int c = 0; c < numeric; c++)
            {
                line.Append((random.NextDouble() * 200 - 100).ToString("F5", CultureInfo.InvariantCulture)).Append(c < 9 ? "," : "");
            }
            if (mixed)
            {
                line.Append(Colours[random.Next(Colours.Length)]).Append(',').Append(Cities[random.Next(Cities.Length)]).Append(',')
                    .Append(random.Next(2) == 0 ? "true" : "false").Append(',').Append(random.Next(2) == 0 ? "yes" : "no");
            }
            line.Append('\n');
            writer.Write(line);
        }
        return path;
    }
}
