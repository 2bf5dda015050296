// 河北省互联网医疗服务监管平台 上传客户端最小示例（C#，.NET 6 及以上，仅用 System.Net.Http 与 System.Text.Json）
// 用法：dotnet run -- <平台地址> <appId> <appSecret> <服务，如 uploadDoctor> <记录文件.json>
using System;
using System.IO;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Threading.Tasks;

public sealed class ImspClient
{
    // 令牌错误代码（缺少、无效、过期）：重新获取令牌后重发一次
    private static readonly int[] TokenErrors = { 40101, 40102, 40103 };

    private readonly HttpClient _http = new HttpClient { Timeout = TimeSpan.FromSeconds(120) };
    private readonly string _base;
    private readonly string _appId;
    private readonly string _appSecret;
    private string? _token;

    public ImspClient(string baseUrl, string appId, string appSecret)
    {
        _base = baseUrl.TrimEnd('/');
        _appId = appId;
        _appSecret = appSecret;
    }

    // 授权码获取服务：GET /auth/accesstoken/create?appId=…&appSecret=…
    public async Task<string> FetchTokenAsync()
    {
        var url = $"{_base}/auth/accesstoken/create?appId={Uri.EscapeDataString(_appId)}&appSecret={Uri.EscapeDataString(_appSecret)}";
        // 失败时 HTTP 状态为 4xx，正文仍是 {"code": 40004, …}：读正文而不是抛出异常
        using var response = await _http.GetAsync(url);
        var text = await response.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(text);
        if (doc.RootElement.GetProperty("code").GetInt32() != 200)
        {
            throw new InvalidOperationException("获取访问令牌失败：" + text);
        }
        _token = doc.RootElement.GetProperty("data").GetProperty("accessToken").GetString();
        return _token!;
    }

    // 上传一批记录（JSON 数组），分块传输；令牌错误时刷新令牌并重发一次。返回回执 JSON。
    public async Task<string> UploadAsync(string service, byte[] body)
    {
        if (_token == null)
        {
            await FetchTokenAsync();
        }
        var text = await PostAsync(service, body);
        if (Array.IndexOf(TokenErrors, CodeOf(text)) >= 0)
        {
            await FetchTokenAsync();
            text = await PostAsync(service, body);
        }
        return text;
    }

    private async Task<string> PostAsync(string service, byte[] body)
    {
        // StreamContent 不声明长度，配合 TransferEncodingChunked 以分块方式发送
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{_base}/{service}");
        request.Headers.TransferEncodingChunked = true;
        request.Headers.Add("accessToken", _token);
        request.Content = new StreamContent(new MemoryStream(body));
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "UTF-8" };
        using var response = await _http.SendAsync(request);
        return await response.Content.ReadAsStringAsync();
    }

    // 响应的顶层 code（令牌错误时 HTTP 状态为 401，正文仍是 {"code": 40102, …}）
    public static int CodeOf(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("code").GetInt32();
    }

    public void UseToken(string value) => _token = value;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length < 5)
        {
            Console.Error.WriteLine("用法：dotnet run -- <平台地址> <appId> <appSecret> <服务> <记录文件.json> [初始令牌]");
            return 2;
        }
        var client = new ImspClient(args[0], args[1], args[2]);
        if (args.Length > 5)
        {
            client.UseToken(args[5]);
        }
        var receipt = await client.UploadAsync(args[3], await File.ReadAllBytesAsync(args[4]));
        Console.WriteLine(receipt);
        // 回执 data.results 逐条给出 msgCode（200 新增、201 覆盖）与全部问题；此处只看整体 code
        return CodeOf(receipt) == 200 ? 0 : 1;
    }
}
