using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using static Microsoft.Playwright.Assertions;

namespace TrainingService.Browser.Tests;

/// <summary>The sweep view (sweeps.js) against a finished sweep that varies the loss: what it shows is what the API says.</summary>
[Collection(BrowserTests.Name)]
public sealed class SweepViewTests(BrowserFixture fixture)
{
    // Counts the canvas's pixels that are not transparent: the parallel-coordinates plot is drawn, not only laid out.
    private const string DrawnPixels = """
        () => {
          const canvas = document.getElementById('sweep-parallel');
          const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
          let drawn = 0;
          for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) drawn++; }
          return drawn;
        }
        """;

    // What the browser does when the tab goes to the background or comes back; headless chromium has no background.
    private const string SetVisibility = """
        (visibility) => {
          Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => visibility });
          document.dispatchEvent(new Event('visibilitychange'));
        }
        """;

    [Fact]
    public async Task A_finished_loss_sweep_shows_its_trials_by_objective_a_curve_per_trial_the_parameters_and_the_api_verdict()
    {
        var client = fixture.Service.Client;
        string sweepId = await SubmitLossSweepAsync(client);
        await WaitForEndAsync(client, sweepId);
        var trials = (await client.GetJsonAsync($"/api/sweeps/{sweepId}/trials?sort=objective"))["items"]!.AsArray();
        string verdict = (string)(await client.GetJsonAsync($"/api/sweeps/{sweepId}/losses"))["verdict"]!;
        Assert.Equal(4, trials.Count);
        var objectives = trials.Select(t => (double)t!["objective"]!).ToList();
        Assert.Equal(objectives.Order(), objectives); // val.mae: lower is better, so best first is ascending

        await using var dashboard = await fixture.NewPageAsync($"&sweep={sweepId}");
        await dashboard.RunAsync(async page =>
        {
            await Expect(page.Locator("#sweep-view")).ToBeVisibleAsync();
            await Expect(page.Locator("#trial-rows tr td:first-child")).ToHaveTextAsync(trials.Select(t => $"#{t!["trial"]}").ToArray());
            for (int i = 0; i < trials.Count; i++)
            {
                await Expect(page.Locator("#trial-rows tr td:first-child a").Nth(i)).ToHaveAttributeAsync("href", $"#job={trials[i]!["jobId"]}");
            }
            // uPlot's legend has a row per series, the x axis (epoch) first.
            var legend = page.Locator("#chart-sweep .u-legend .u-series");
            await Expect(legend).ToHaveCountAsync(trials.Count + 1);
            foreach (var trial in trials)
            {
                await Expect(legend.Filter(new() { HasTextRegex = new($"^#{trial!["trial"]}\\b") })).ToHaveCountAsync(1);
            }
            await Expect(page.Locator("#sweep-verdict-text")).ToHaveTextAsync(verdict);
            await Expect(page.Locator("#loss-rows tr")).ToHaveCountAsync(2);
            await Expect(page.Locator("#sweep-parallel")).ToHaveAttributeAsync("aria-label", new System.Text.RegularExpressions.Regex("^Parallel coordinates of 4 trials"));
            Assert.True(await page.EvaluateAsync<int>(DrawnPixels) > 1000, "the parallel-coordinates canvas is blank");
            // The sweep and its trials have ended: nothing more to read.
            await Expect(page.Locator("#sweep-polling")).ToContainTextAsync("not refreshing");
            await Expect(page.Locator("#sweep-cancel")).ToBeHiddenAsync();

            // A trial's row opens its job.
            await page.Locator("#trial-rows tr td:first-child a").First.ClickAsync();
            await Expect(page.Locator("#job-view")).ToBeVisibleAsync();
            await Expect(page.Locator("#job-title")).ToContainTextAsync((string)trials[0]!["jobId"]!);
            await Expect(page.Locator("#sweep-view")).ToBeHiddenAsync();
        });
    }

    [Fact]
    public async Task A_running_sweep_is_followed_while_the_tab_is_visible_until_its_cancel_button_stops_it()
    {
        var client = fixture.Service.Client;
        // Long trials, one at a time: the sweep is still running when the page opens it.
        string sweepId = await SubmitLossSweepAsync(client, epochs: 5000, maxParallel: 1);

        await using var dashboard = await fixture.NewPageAsync($"&sweep={sweepId}");
        await dashboard.RunAsync(async page =>
        {
            await Expect(page.Locator("#sweep-polling")).ToContainTextAsync("refreshing every 3 s");
            await Expect(page.Locator("#trial-rows tr .badge.running")).ToHaveCountAsync(1, new() { Timeout = 30_000 });

            // A hidden tab reads nothing, for longer than a poll's interval, and reads again once shown.
            await page.EvaluateAsync(SetVisibility, "hidden");
            await Expect(page.Locator("#sweep-polling")).ToHaveTextAsync("paused while the tab is hidden");
            int reads = 0; // the sweep view's own reads (the job list is dashboard.js's)
            page.Request += (_, request) => reads += request.Url.Contains("/api/sweeps", StringComparison.Ordinal)
                || request.Url.Contains("/api/histories", StringComparison.Ordinal) ? 1 : 0;
            await Task.Delay(TimeSpan.FromSeconds(4));
            Assert.Equal(0, reads);
            var read = page.WaitForRequestAsync(new System.Text.RegularExpressions.Regex($"/api/sweeps/{sweepId}$"));
            await page.EvaluateAsync(SetVisibility, "visible");
            await read;
            await Expect(page.Locator("#sweep-polling")).ToHaveTextAsync("refreshing every 3 s");

            await page.Locator("#sweep-cancel").ClickAsync();

            await Expect(page.Locator("#sweep-status .badge").First).ToHaveTextAsync("cancelled", new() { Timeout = 15_000 });
            await Expect(page.Locator("#sweep-cancel")).ToBeHiddenAsync();
            await Expect(page.Locator("#sweep-polling")).ToContainTextAsync("not refreshing", new() { Timeout = 15_000 });
            await Expect(page.Locator("#sweep-summary")).ToContainTextAsync("stopped: cancelled");
        });
        var sweep = await client.GetJsonAsync($"/api/sweeps/{sweepId}");
        Assert.Equal("cancelled", (string?)sweep["status"]);
    }

    // A grid of two losses by two learning rates on y = 2·x1 − x2 + 0.5 + noise: four trials.
    private static async Task<string> SubmitLossSweepAsync(HttpClient client, int epochs = 3, int maxParallel = 2)
    {
        var random = new Random(14);
        var csv = new StringBuilder("x1,x2,y\n");
        for (int i = 0; i < 300; i++)
        {
            double x1 = random.NextDouble() * 4 - 2;
            double x2 = random.NextDouble() * 4 - 2;
            double y = 2 * x1 - x2 + 0.5 + (random.NextDouble() - 0.5);
            csv.Append(CultureInfo.InvariantCulture, $"{x1:R},{x2:R},{y:R}\n");
        }
        string datasetId = await client.UploadAsync(csv.ToString(), "sweep-view"); // 201, or 200 when another test uploaded the same bytes
        var submit = await client.PostAsJsonAsync("/api/sweeps", new
        {
            @base = new { datasetId, target = "y", epochs, validation = new { fraction = 0.2 } },
            parameters = new Dictionary<string, object>
            {
                ["loss"] = new { values = new object[] { new { name = "mse" }, new { name = "l1" } } },
                ["optimizer.learningRate"] = new { values = new[] { 0.01, 0.05 } },
            },
            method = "grid",
            maxParallel,
            objective = new { metric = "val.mae", goal = "minimize" },
        });
        Assert.Equal(HttpStatusCode.Accepted, submit.StatusCode);
        return (string)(await submit.Content.ReadFromJsonAsync<JsonNode>())!["id"]!;
    }

    private static async Task WaitForEndAsync(HttpClient client, string sweepId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (DateTime.UtcNow < deadline)
        {
            var sweep = await client.GetJsonAsync($"/api/sweeps/{sweepId}");
            if ((string?)sweep["status"] != "running")
            {
                Assert.Equal("completed", (string?)sweep["status"]);
                return;
            }
            await Task.Delay(250);
        }
        throw new TimeoutException($"Sweep {sweepId} did not end within 120 s.");
    }
}
