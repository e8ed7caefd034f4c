using static Microsoft.Playwright.Assertions;

namespace TrainingService.Browser.Tests;

/// <summary>The fixture's own promise: a page that logs an error or gets an unexpected failure fails its test, with a screenshot.</summary>
[Collection(BrowserTests.Name)]
public sealed class FixtureTests(BrowserFixture fixture)
{
    [Fact]
    public async Task The_dashboard_opens_signed_in_with_the_key_from_its_link_and_takes_the_key_out_of_the_address()
    {
        await using var dashboard = await fixture.NewPageAsync();
        await dashboard.RunAsync(async page =>
        {
            await Expect(page.Locator("#whoami")).ToContainTextAsync("owner");
            Assert.DoesNotContain("key=", page.Url, StringComparison.Ordinal);
        });
    }

    // The dashboard keeps its key in sessionStorage; a fetch made here must send it, or the answer is a 401.
    private const string MissingJob = "fetch('/api/jobs/00000000-0000-0000-0000-000000000000', " +
        "{ headers: { Authorization: 'Bearer ' + sessionStorage.getItem('trainingservice.key') } })";

    [Fact]
    public async Task An_unexpected_error_response_fails_the_test_and_names_its_screenshot()
    {
        await using var dashboard = await fixture.NewPageAsync();

        var failure = await Assert.ThrowsAsync<BrowserTestFailure>(() => dashboard.RunAsync(page =>
            page.EvaluateAsync(MissingJob)));

        Assert.Contains("HTTP 404: GET", failure.Message, StringComparison.Ordinal);
        string screenshot = failure.Message.Split("Screenshot: ")[1].Trim();
        Assert.True(File.Exists(screenshot), $"no screenshot at {screenshot}");
        File.Delete(screenshot);
    }

    [Fact]
    public async Task A_console_error_fails_the_test_but_an_expected_status_does_not()
    {
        await using var dashboard = await fixture.NewPageAsync();
        dashboard.ExpectStatus(404, "/api/jobs/");

        var failure = await Assert.ThrowsAsync<BrowserTestFailure>(() => dashboard.RunAsync(async page =>
        {
            await page.EvaluateAsync(MissingJob);
            await page.EvaluateAsync("console.error('something broke')");
        }));

        Assert.Contains("console error: something broke", failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("HTTP 404", failure.Message, StringComparison.Ordinal);
        File.Delete(failure.Message.Split("Screenshot: ")[1].Trim());
    }
}
