using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using TrainingService.ProcessHarness;
using static Microsoft.Playwright.Assertions;

namespace TrainingService.Browser.Tests;

/// <summary>
/// The job and comparison charts in a real browser: log scale, smoothing, the bands of a downsampled view, zoom, the
/// background tab, markers. Histories are written straight into the database (<see cref="SeededJobs"/>) so each test has
/// exactly the curve it needs; what the charts drew is read from charts.js's <c>lastDrawn</c>, the module the page uses.
/// </summary>
[Collection(BrowserTests.Name)]
public sealed class ChartTests(BrowserFixture fixture)
{
    private static readonly DateTimeOffset Start = new(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);

    private async Task<Guid> SeedAsync(IReadOnlyList<SeededEpoch> epochs, string status = "succeeded", string? stopReason = "completed",
        int? modelEpoch = null)
    {
        string tenant = (string)(await fixture.Service.Client.GetFromJsonAsync<JsonNode>("/api/me"))!["tenant"]!;
        return await new SeededJobs(fixture.ConnectionString).CreateAsync(tenant, status, epochs.Count, epochs, stopReason, modelEpoch);
    }

    /// <summary>What the chart named <paramref name="chart"/> drew last, once it has drawn at least <paramref name="points"/> x values.</summary>
    private static async Task<JsonNode> DrawnAsync(IPage page, string chart, int points = 1)
    {
        await WaitForDrawnAsync(page, $"(d) => d.data[0].length >= {points}", chart);
        string json = await page.EvaluateAsync<string>("(name) => JSON.stringify(window.charts.lastDrawn(name))", chart);
        return JsonNode.Parse(json)!;
    }

    /// <summary>
    /// Waits until <paramref name="condition"/> holds for what the chart last drew. The page's own charts.js module (an import
    /// of the same URL is the same instance) is put on window first: a polled predicate must answer at once, not with a promise.
    /// </summary>
    private static async Task WaitForDrawnAsync(IPage page, string condition, string chart = "loss")
    {
        await page.EvaluateAsync("async () => { window.charts = await import('/charts.js'); }");
        await page.WaitForFunctionAsync($"(name) => {{ const d = window.charts.lastDrawn(name); return d?.data !== undefined && ({condition})(d); }}", chart);
    }

    private static List<double?> Series(JsonNode drawn, int index) =>
        drawn["data"]![index]!.AsArray().Select(v => v is null ? (double?)null : (double)v).ToList();

    [Fact]
    public async Task The_log_scale_switch_is_remembered_over_a_reload_and_draws_a_log_axis()
    {
        var job = await SeedAsync(SeededJobs.Curve(50, 1, Start));
        await using var dashboard = await fixture.NewPageAsync($"&job={job}");
        await dashboard.RunAsync(async page =>
        {
            Assert.False((bool)(await DrawnAsync(page, "loss", 50))["log"]!);
            await page.Locator("#log-scale").CheckAsync();
            Assert.True((bool)(await DrawnAsync(page, "loss", 50))["log"]!);

            await page.ReloadAsync();

            await Expect(page.Locator("#log-scale")).ToBeCheckedAsync();
            Assert.True((bool)(await DrawnAsync(page, "loss", 50))["log"]!);
        });
    }

    [Fact]
    public async Task The_comparison_chart_remembers_its_own_log_scale_apart_from_the_job_chart()
    {
        var a = await SeedAsync(SeededJobs.Curve(30, 5, Start));
        var b = await SeedAsync(SeededJobs.Curve(40, 6, Start));
        await using var dashboard = await fixture.NewPageAsync($"&compare={a},{b}&metric=trainLoss");
        await dashboard.RunAsync(async page =>
        {
            Assert.False((bool)(await DrawnAsync(page, "compare", 40))["log"]!);
            await page.Locator("#compare-log-scale").CheckAsync();
            await WaitForDrawnAsync(page, "(d) => d.log", "compare");

            await page.ReloadAsync();

            await Expect(page.Locator("#compare-log-scale")).ToBeCheckedAsync();
            Assert.True((bool)(await DrawnAsync(page, "compare", 40))["log"]!);
            await Expect(page.Locator("#log-scale")).Not.ToBeCheckedAsync();
        });
    }

    [Fact]
    public async Task The_x_axis_can_be_wall_clock_time_and_the_choice_is_remembered()
    {
        var epochs = SeededJobs.Curve(20, 7, Start);
        var job = await SeedAsync(epochs);
        await using var dashboard = await fixture.NewPageAsync($"&job={job}");
        await dashboard.RunAsync(async page =>
        {
            Assert.Equal(1, Series(await DrawnAsync(page, "loss", 20), 0)[0]);

            await page.Locator("#x-axis").SelectOptionAsync("time");
            await WaitForDrawnAsync(page, "(d) => d.data[0][0] > 1e9");
            await page.ReloadAsync();

            await Expect(page.Locator("#x-axis")).ToHaveValueAsync("time");
            var x = Series(await DrawnAsync(page, "loss", 20), 0);
            Assert.Equal(epochs.Select(e => (double?)e.RecordedAt.ToUnixTimeMilliseconds() / 1000), x);
        });
    }

    [Fact]
    public async Task Smoothing_draws_the_debiased_ema_over_the_raw_series_which_stays_drawn()
    {
        var epochs = SeededJobs.Curve(60, 2, Start);
        var job = await SeedAsync(epochs);
        await using var dashboard = await fixture.NewPageAsync($"&job={job}");
        await dashboard.RunAsync(async page =>
        {
            var before = await DrawnAsync(page, "loss", 60);
            Assert.Equal(Series(before, 1), Series(before, 3)); // no smoothing: the line is the raw series

            // A range input cannot be filled: set it as a drag would, and say so with the input event.
            await page.Locator("#smoothing").EvaluateAsync("(slider) => { slider.value = '0.9'; slider.dispatchEvent(new Event('input')); }");
            await WaitForDrawnAsync(page, "(d) => d.data[3][5] !== d.data[1][5]");
            var after = await DrawnAsync(page, "loss", 60);

            var raw = epochs.Select(e => (double?)e.TrainLoss).ToList();
            Assert.Equal(raw, Series(after, 1)); // the raw series, still drawn (faint)
            var expected = DebiasedEma(epochs.Select(e => e.TrainLoss).ToList(), 0.9);
            var smoothed = Series(after, 3);
            for (int i = 0; i < expected.Count; i++)
            {
                Assert.Equal(expected[i], smoothed[i]!.Value, 9);
            }
            await Expect(page.Locator("#loss-note")).ToContainTextAsync("debiased EMA 0.9");
        });
    }

    // TensorBoard's smoothing, written out independently of charts.js.
    private static List<double> DebiasedEma(List<double> values, double weight)
    {
        double last = 0;
        return values.Select((v, i) =>
        {
            last = last * weight + (1 - weight) * v;
            return last / (1 - Math.Pow(weight, i + 1));
        }).ToList();
    }

    /// <summary>5,000 epochs whose training loss spikes to 50 at epoch 2,345 only; the validation loss stays smooth.</summary>
    private static List<SeededEpoch> OneSpike() =>
        SeededJobs.Curve(5_000, 3, Start).Select(e => e.Epoch == 2_345 ? e with { TrainLoss = 50 } : e).ToList();

    [Fact]
    public async Task A_downsampled_view_shades_the_bucket_holding_a_spike_up_to_the_spike()
    {
        var job = await SeedAsync(OneSpike());
        await using var dashboard = await fixture.NewPageAsync($"&job={job}");
        await dashboard.RunAsync(async page =>
        {
            var drawn = await DrawnAsync(page, "loss", 100);

            Assert.InRange(drawn["data"]![0]!.AsArray().Count, 100, 4_999); // downsampled
            var bands = drawn["bands"]!.AsArray();
            var spike = bands.Single(b => (string)b!["series"]! == "trainLoss" && (int)b["fromEpoch"]! <= 2_345 && (int)b["toEpoch"]! >= 2_345);
            Assert.Equal(50, (double)spike!["max"]!);
            Assert.All(bands.Where(b => b != spike && (string)b!["series"]! == "trainLoss"), b => Assert.True((double)b!["max"]! < 10));
            await Expect(page.Locator("#loss-note")).ToContainTextAsync("downsampled");
        });
    }

    [Fact]
    public async Task Zooming_into_a_downsampled_view_reads_that_range_again_at_full_resolution()
    {
        var job = await SeedAsync(OneSpike());
        await using var dashboard = await fixture.NewPageAsync($"&job={job}");
        await dashboard.RunAsync(async page =>
        {
            await DrawnAsync(page, "loss", 100);
            var over = (await page.Locator("#chart-loss .u-over").BoundingBoxAsync())!;
            float y = over.Y + over.Height / 2;

            var range = await page.RunAndWaitForResponseAsync(async () =>
            {
                await page.Mouse.MoveAsync(over.X + over.Width * 0.40f, y);
                await page.Mouse.DownAsync();
                await page.Mouse.MoveAsync(over.X + over.Width * 0.45f, y, new MouseMoveOptions { Steps = 5 });
                await page.Mouse.UpAsync();
            }, response => response.Url.Contains("toEpoch=", StringComparison.Ordinal) && response.Url.Contains("maxPoints=", StringComparison.Ordinal));

            var body = JsonNode.Parse(await range.TextAsync())!;
            Assert.False((bool)body["sampled"]!);
            var epochs = body["epochs"]!.AsArray().Select(e => (int)e!["epoch"]!).ToList();
            Assert.Equal(Enumerable.Range(epochs[0], epochs.Count), epochs); // every epoch of the range
            Assert.InRange(epochs[0], 1_800, 2_200);
            await Expect(page.Locator("#loss-note")).ToContainTextAsync("at full resolution");
            var drawn = await DrawnAsync(page, "loss");
            Assert.Equal(epochs.Select(e => (double?)e), Series(drawn, 0));
        });
    }

    [Fact]
    public async Task A_tab_in_the_background_makes_no_requests_and_resumes_when_visible()
    {
        var job = await StartLongJobAsync();
        try
        {
            await using var dashboard = await fixture.NewPageAsync($"&job={job}");
            dashboard.ExpectAborted("/history"); // the event stream (or a poll) in flight when the tab is hidden
            var requests = new List<string>();
            dashboard.Page.Request += (_, request) =>
            {
                lock (requests)
                {
                    requests.Add(request.Url);
                }
            };
            await dashboard.RunAsync(async page =>
            {
                await Expect(page.Locator("#job-polling")).ToHaveTextAsync("live (event stream)", new() { Timeout = 30_000 });

                await SetVisibilityAsync(page, hidden: true);
                await Expect(page.Locator("#job-polling")).ToContainTextAsync("paused");
                lock (requests)
                {
                    requests.Clear();
                }
                await page.WaitForTimeoutAsync(4_000); // longer than the job list's 3 s refresh
                lock (requests)
                {
                    Assert.Empty(requests);
                }

                await SetVisibilityAsync(page, hidden: false);
                await Expect(page.Locator("#job-polling")).ToHaveTextAsync("live (event stream)", new() { Timeout = 10_000 });
                lock (requests)
                {
                    Assert.Contains(requests, url => url.Contains($"/api/jobs/{job}/history/stream", StringComparison.Ordinal));
                }
            });
        }
        finally
        {
            await fixture.Service.Client.PostAsync($"/api/jobs/{job}/cancel", null);
        }
    }

    [Fact]
    public async Task Where_the_event_stream_cannot_be_read_the_page_polls_with_after_epoch()
    {
        var job = await StartLongJobAsync();
        try
        {
            // A proxy that cuts streams, as far as the page can tell, from the first request on: set up on the page and
            // then reloaded, the reload aborted whatever the page had in flight, and the test failed on that.
            await using var dashboard = await fixture.NewPageAsync($"&job={job}",
                context => context.RouteAsync("**/history/stream*", route => route.AbortAsync("aborted")));
            await dashboard.RunAsync(async page =>
            {
                await page.WaitForRequestAsync(r => r.Url.Contains($"/api/jobs/{job}/history?afterEpoch=", StringComparison.Ordinal)
                    && r.Url.Contains("&limit=", StringComparison.Ordinal));
                await Expect(page.Locator("#job-polling")).ToContainTextAsync("polling every 1.5 s (the event stream failed");
                await Expect(page.Locator("#epoch-rows td").First).Not.ToHaveTextAsync("No epochs yet.", new() { Timeout = 30_000 });
            });
        }
        finally
        {
            await fixture.Service.Client.PostAsync($"/api/jobs/{job}/cancel", null);
        }
    }

    // Headless chromium's tab is always visible; what the page reads (document.hidden, visibilityState) is set instead.
    private static Task SetVisibilityAsync(IPage page, bool hidden) => page.EvaluateAsync("""
        (hidden) => {
          Object.defineProperty(document, 'hidden', { value: hidden, configurable: true });
          Object.defineProperty(document, 'visibilityState', { value: hidden ? 'hidden' : 'visible', configurable: true });
          document.dispatchEvent(new Event('visibilitychange'));
        }
        """, hidden);

    // A real job that runs for minutes: the stream stays open while the test looks.
    private async Task<string> StartLongJobAsync()
    {
        var csv = new StringBuilder("x1,x2,y\n");
        var random = new Random(7);
        for (int i = 0; i < 20_000; i++)
        {
            double a = random.NextDouble(), b = random.NextDouble();
            csv.Append(CultureInfo.InvariantCulture, $"{a:R},{b:R},{3 * a - 2 * b:R}\n");
        }
        string dataset = await fixture.Service.Client.UploadAsync(csv.ToString(), $"chart-long-{Guid.NewGuid():N}");
        return await fixture.Service.Client.SubmitAsync(new
        {
            datasetId = dataset, target = "y", model = new { type = "linear" }, loss = new { name = "mse" },
            optimizer = new { name = "sgd", learningRate = 0.01 }, epochs = 10_000, batchSize = 32,
        });
    }

    [Fact]
    public async Task Divergence_early_stopping_the_kept_model_and_a_learning_rate_cut_are_marked_on_the_loss_curve()
    {
        var epochs = SeededJobs.Curve(40, 4, Start).Select(e => e with
        {
            LearningRate = e.Epoch < 20 ? 0.1 : 0.01,
            ValLoss = e.Epoch == 25 ? double.NaN : e.ValLoss,
        }).ToList();
        var job = await SeedAsync(epochs, stopReason: "early_stopped", modelEpoch: 15);
        await using var dashboard = await fixture.NewPageAsync($"&job={job}");
        await dashboard.RunAsync(async page =>
        {
            await WaitForDrawnAsync(page, "(d) => d.markers.length >= 4");
            var markers = (await DrawnAsync(page, "loss", 40))["markers"]!.AsArray()
                .Select(m => ((string)m!["label"]!, (int)m["epoch"]!)).ToList();

            Assert.Contains(("diverged (NaN/∞)", 25), markers);
            Assert.Contains(("early stop", 40), markers);
            Assert.Contains(("kept model (best)", 15), markers);
            Assert.Contains(("lr cut", 20), markers);
            Assert.Equal(4, markers.Count);
        });
    }
}
