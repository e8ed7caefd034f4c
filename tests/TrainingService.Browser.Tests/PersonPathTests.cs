using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace TrainingService.Browser.Tests;

/// <summary>A person's whole path through the dashboard: data in, a job submitted through the form, watched, acted on.</summary>
[Collection(BrowserTests.Name)]
public sealed class PersonPathTests(BrowserFixture fixture)
{
    [Fact]
    public async Task A_person_uploads_penguins_reads_the_schema_submits_an_mlp_watches_it_live_cancels_it_and_downloads_its_history()
    {
        // Epochs slowed by size, not by sleeping: batches of 2 over 2,400 training rows.
        var penguins = Penguins.Generate(3000);
        await using var dashboard = await fixture.NewPageAsync();
        await dashboard.RunAsync(async page =>
        {
            await page.GetByRole(AriaRole.Button, new() { Name = "New job" }).ClickAsync();
            await page.Locator("#upload-file").SetInputFilesAsync(new FilePayload
            {
                Name = "penguins.csv", MimeType = "text/csv", Buffer = Encoding.UTF8.GetBytes(penguins.Csv),
            });
            await Expect(page.Locator("#upload-status")).ToContainTextAsync("Stored penguins.csv");

            await ExpectSchemaRowAsync(page, "species", "categorical", 0, "Adelie");
            await ExpectSchemaRowAsync(page, "island", "categorical", 0, "Dream");
            await ExpectSchemaRowAsync(page, "bill_length_mm", "numeric", penguins.MissingBillLength, "mean");
            await ExpectSchemaRowAsync(page, "sex", "categorical", penguins.MissingSex, "female");
            await Expect(page.Locator("#dataset-title")).ToContainTextAsync($"{penguins.Rows} rows, 7 columns");
            await Expect(page.Locator("#preview thead th")).ToHaveTextAsync(Penguins.Header.Split(','));
            await Expect(page.Locator("#preview tbody tr")).ToHaveCountAsync(10);
            await Expect(page.Locator("#preview tbody tr").Nth(3).Locator("td.missing")).ToHaveCountAsync(1); // row 3 has no sex

            await page.GetByLabel("Target column").SelectOptionAsync("species");
            var losses = await page.Locator("#loss-name-0 option").AllInnerTextsAsync();
            Assert.Contains(losses, l => l.StartsWith("cross_entropy", StringComparison.Ordinal));
            Assert.DoesNotContain(losses, l => l.StartsWith("mse", StringComparison.Ordinal) || l.StartsWith("bce", StringComparison.Ordinal));
            await Expect(page.GetByLabel("Loss", new() { Exact = true })).ToHaveValueAsync("cross_entropy");
            await Expect(page.GetByLabel("label_smoothing")).ToHaveValueAsync("0");
            await page.GetByLabel("label_smoothing").FillAsync("0.1");
            await page.GetByLabel("Model", new() { Exact = true }).SelectOptionAsync("mlp");
            await page.GetByLabel("Hidden layers").FillAsync("32");
            await page.GetByLabel("Epochs", new() { Exact = true }).FillAsync("300");
            await page.GetByLabel("Batch size", new() { Exact = true }).FillAsync("2");

            await page.GetByText("Show as JSON").ClickAsync();
            var shown = JsonNode.Parse(await page.Locator("#spec-json").InnerTextAsync())!;
            Assert.Equal(0.1, (double)shown["loss"]!["label_smoothing"]!);
            Assert.Equal("mlp", (string?)shown["model"]!["type"]);

            await page.EvaluateAsync("window.stillThisPage = true"); // gone if anything reloads the page
            // The id comes from the submit's own response: the page may still show another job (the newest running one) for a moment.
            var submitted = await page.RunAndWaitForResponseAsync(
                () => page.GetByRole(AriaRole.Button, new() { Name = "Submit job" }).ClickAsync(),
                r => r.Url.EndsWith("/api/jobs", StringComparison.Ordinal) && r.Request.Method == "POST");
            string jobId = (string)JsonNode.Parse(await submitted.TextAsync())!["id"]!;
            await Expect(page.Locator("#job-title .job-id")).ToHaveTextAsync(jobId);
            // Epochs arrive while the page stays: first one, then at least three (the progress reads "epoch N of 300").
            await Expect(page.Locator("#job-progress")).ToHaveTextAsync(new Regex(@"^epoch [1-9]\d* of 300$"), new() { Timeout = 60_000 });
            await Expect(page.Locator("#job-progress")).ToHaveTextAsync(new Regex(@"^epoch ([3-9]|[1-9]\d+) of 300$"), new() { Timeout = 60_000 });
            await Expect(page.Locator("#epoch-rows tr")).Not.ToHaveCountAsync(1); // rows of epochs, not "No epochs yet"
            Assert.True(await page.EvaluateAsync<bool>("window.stillThisPage === true"));
            await page.GetByRole(AriaRole.Button, new() { Name = "Cancel job" }).ClickAsync();
            await Expect(page.Locator("#job-status")).ToContainTextAsync("cancelled", new() { Timeout = 30_000 });

            var job = await fixture.Service.Client.GetJsonAsync($"/api/jobs/{jobId}");
            Assert.Equal(0.1, (double)job["spec"]!["loss"]!["label_smoothing"]!);
            Assert.Equal("mlp", (string?)job["spec"]!["model"]!["type"]);
            await ExpectDownloadedHistoryEqualsApiAsync(page, jobId);
        });
    }

    private static async Task ExpectSchemaRowAsync(IPage page, string column, string type, int missing, string statistics)
    {
        var row = page.Locator($"#schema tr[data-column='{column}']");
        await Expect(row.Locator("td").Nth(0)).ToContainTextAsync(type);
        await Expect(row.Locator("td").Nth(1)).ToHaveTextAsync(missing.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Expect(row.Locator("td").Nth(3)).ToContainTextAsync(statistics);
    }

    private async Task ExpectDownloadedHistoryEqualsApiAsync(IPage page, string jobId)
    {
        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Button, new() { Name = "History CSV" }).ClickAsync());
        Assert.Equal($"job-{jobId}-history.csv", download.SuggestedFilename);
        string downloaded = await File.ReadAllTextAsync((await download.PathAsync())!);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/jobs/{jobId}/history");
        request.Headers.Accept.ParseAdd("text/csv");
        string expected = await (await fixture.Service.Client.SendAsync(request)).Content.ReadAsStringAsync();
        Assert.StartsWith("epoch,", expected, StringComparison.Ordinal);
        Assert.True(expected.Split('\n').Length > 4, expected); // a header and at least 3 epochs
        Assert.Equal(expected, downloaded);
    }
}
