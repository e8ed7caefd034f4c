using Microsoft.Playwright;

namespace TrainingService.Browser.Tests;

/// <summary>
/// A dashboard tab that watches itself: every console error, uncaught exception, failed request and HTTP status of 400 or
/// more is recorded, unless the test said it expects that status (<see cref="ExpectStatus"/>). <see cref="RunAsync"/> runs
/// a test's steps, then <see cref="AssertCleanAsync"/>; if either fails, a screenshot is saved and its path is put in
/// the failure message.
/// </summary>
public sealed class DashboardPage : IAsyncDisposable
{
    private readonly IBrowserContext _context;
    private readonly string _test;
    private readonly Func<string> _serviceOutput;
    private readonly List<string> _problems = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<IRequest, int> _statuses = new();
    private readonly List<(int Status, string Path)> _expected = [];
    // The page aborts a job's event stream itself whenever it stops watching the job (another job opened, the tab hidden).
    private readonly List<string> _expectedAborts = ["/history/stream"];

    internal DashboardPage(IBrowserContext context, IPage page, string test, Func<string> serviceOutput)
    {
        _context = context;
        _test = test;
        _serviceOutput = serviceOutput;
        Page = page;
        page.Console += (_, message) =>
        {
            // Chromium also logs every response of 400 or more as "Failed to load resource"; the Response handler judges those.
            if (message.Type == "error" && !message.Text.StartsWith("Failed to load resource: the server responded with a status of", StringComparison.Ordinal))
            {
                Record($"console error: {message.Text} ({message.Location})");
            }
        };
        page.PageError += (_, error) => Record($"uncaught error: {error}");
        page.RequestFailed += (_, request) =>
        {
            // Chromium sometimes reports a 304 as aborted (net::ERR_ABORTED) once the page drops the Response: it has
            // no body to lose, and the page had its answer (the history poll's "nothing new").
            if (!(_statuses.TryGetValue(request, out int status) && status == 304) && !IsExpectedAbort(request))
            {
                Record($"request failed: {request.Method} {request.Url}: {request.Failure}");
            }
        };
        page.RequestFinished += (_, request) => _statuses.TryRemove(request, out int _);
        page.Response += (_, response) =>
        {
            _statuses[response.Request] = response.Status; // RequestFailed, which may follow, needs it
            if (response.Status >= 400 && !IsExpected(response))
            {
                Record($"HTTP {response.Status}: {response.Request.Method} {response.Url}");
            }
        };
    }

    public IPage Page { get; }

    /// <summary>Responses with <paramref name="status"/> to URLs whose path starts with <paramref name="pathPrefix"/> are not problems.</summary>
    public void ExpectStatus(int status, string pathPrefix)
    {
        lock (_expected)
        {
            _expected.Add((status, pathPrefix));
        }
    }

    /// <summary>Throws, listing them, if the page has had any console error, uncaught error or unexpected failed request.</summary>
    public Task AssertCleanAsync()
    {
        lock (_problems)
        {
            if (_problems.Count > 0)
            {
                throw new InvalidOperationException($"The page was not clean:\n  {string.Join("\n  ", _problems)}");
            }
        }
        return Task.CompletedTask;
    }

    /// <summary>Runs a test's steps and then <see cref="AssertCleanAsync"/>; on a failure, saves a screenshot and names it.</summary>
    public async Task RunAsync(Func<IPage, Task> steps)
    {
        try
        {
            await steps(Page);
            await AssertCleanAsync();
        }
        catch (Exception failure)
        {
            string path = await ScreenshotAsync();
            string problems;
            lock (_problems)
            {
                problems = _problems.Count == 0 ? "" : $"\nThe page also had:\n  {string.Join("\n  ", _problems)}";
            }
            throw new BrowserTestFailure($"{failure.Message}{problems}\nScreenshot: {path}{ServiceWarnings()}", failure);
        }
    }

    public async ValueTask DisposeAsync() => await _context.DisposeAsync();

    /// <summary>
    /// Requests to URLs whose path contains <paramref name="pathPart"/> that the page itself aborts (net::ERR_ABORTED) are
    /// not problems (a job's event stream always is one: the page closes it when it stops watching the job).
    /// </summary>
    public void ExpectAborted(string pathPart)
    {
        lock (_expected)
        {
            _expectedAborts.Add(pathPart);
        }
    }

    private bool IsExpectedAbort(IRequest request)
    {
        string path = new Uri(request.Url).AbsolutePath;
        lock (_expected)
        {
            return request.Failure == "net::ERR_ABORTED" && _expectedAborts.Any(part => path.Contains(part, StringComparison.Ordinal));
        }
    }

    private bool IsExpected(IResponse response)
    {
        string path = new Uri(response.Url).AbsolutePath;
        lock (_expected)
        {
            return _expected.Any(e => e.Status == response.Status && path.StartsWith(e.Path, StringComparison.Ordinal));
        }
    }

    /// <summary>The service's recent warnings and errors: a failed request often has its reason there.</summary>
    private string ServiceWarnings()
    {
        var lines = _serviceOutput().Split('\n');
        var flagged = lines.Select((line, i) => (line, i)).Where(l => l.line.StartsWith("warn:", StringComparison.Ordinal)
            || l.line.StartsWith("fail:", StringComparison.Ordinal) || l.line.StartsWith("crit:", StringComparison.Ordinal)).TakeLast(10);
        // The simple console format puts the message on the line after the level and category.
        var text = flagged.Select(l => $"{l.line.Trim()} {(l.i + 1 < lines.Length ? lines[l.i + 1].Trim() : "")}").ToList();
        return text.Count == 0 ? "" : $"\nThe service logged:\n  {string.Join("\n  ", text)}";
    }

    private void Record(string problem)
    {
        lock (_problems)
        {
            _problems.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {problem}");
        }
    }

    private async Task<string> ScreenshotAsync()
    {
        Directory.CreateDirectory(BrowserFixture.ScreenshotFolder);
        string path = Path.Combine(BrowserFixture.ScreenshotFolder, $"{_test}-{DateTime.UtcNow:HHmmss}.png");
        try
        {
            await Page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
            return path;
        }
        catch (PlaywrightException e)
        {
            return $"(none: {e.Message})";
        }
    }
}

/// <summary>A browser test's failure, with what the page logged and where its screenshot is.</summary>
public sealed class BrowserTestFailure(string message, Exception inner) : Exception(message, inner);
