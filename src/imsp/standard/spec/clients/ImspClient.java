// 河北省互联网医疗服务监管平台 上传客户端最小示例（Java 17，仅用 java.net.http，无第三方依赖）
// 用法：java ImspClient <平台地址> <appId> <appSecret> <服务，如 uploadDoctor> <记录文件.json>
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public final class ImspClient {
    /** 令牌错误代码（缺少、无效、过期）：重新获取令牌后重发一次。 */
    private static final Set<Integer> TOKEN_ERRORS = Set.of(40101, 40102, 40103);
    private static final Pattern CODE = Pattern.compile("^\\s*\\{\\s*\"code\"\\s*:\\s*(-?\\d+)");
    private static final Pattern TOKEN = Pattern.compile("\"accessToken\"\\s*:\\s*\"([^\"]+)\"");

    // HTTP/1.1：平台不做明文 HTTP/2 升级（h2c），默认的 HTTP/2 会在带请求体的 POST 上失败
    private final HttpClient http = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10))
            .build();
    private final String base;
    private final String appId;
    private final String appSecret;
    private String token;

    public ImspClient(String base, String appId, String appSecret) {
        this.base = base.endsWith("/") ? base.substring(0, base.length() - 1) : base;
        this.appId = appId;
        this.appSecret = appSecret;
    }

    /** 授权码获取服务：GET /auth/accesstoken/create?appId=…&appSecret=… */
    public String fetchToken() throws IOException, InterruptedException {
        String url = base + "/auth/accesstoken/create?appId=" + enc(appId) + "&appSecret=" + enc(appSecret);
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url)).GET()
                .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        Matcher m = TOKEN.matcher(r.body());
        if (codeOf(r.body()) != 200 || !m.find()) {
            throw new IOException("获取访问令牌失败：" + r.body());
        }
        token = m.group(1);
        return token;
    }

    /** 上传一批记录（JSON 数组），分块传输；令牌错误时刷新令牌并重发一次。返回回执 JSON。 */
    public String upload(String service, byte[] body) throws IOException, InterruptedException {
        if (token == null) {
            fetchToken();
        }
        HttpResponse<String> r = post(service, body);
        if (TOKEN_ERRORS.contains(codeOf(r.body()))) {
            fetchToken();
            r = post(service, body);
        }
        return r.body();
    }

    private HttpResponse<String> post(String service, byte[] body) throws IOException, InterruptedException {
        // ofInputStream 没有已知长度，HttpClient 以 Transfer-Encoding: chunked 发送
        HttpRequest request = HttpRequest.newBuilder(URI.create(base + "/" + service))
                .timeout(Duration.ofSeconds(120))
                .header("Content-Type", "application/json;charset=UTF-8")
                .header("accessToken", token)
                .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(body)))
                .build();
        return http.send(request, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
    }

    /** 响应的顶层 code（平台的响应总以 {"code": … 开头）。 */
    static int codeOf(String json) {
        Matcher m = CODE.matcher(json);
        return m.find() ? Integer.parseInt(m.group(1)) : -1;
    }

    /** 用一个已失效的令牌开始，用于演示“令牌错误 → 刷新 → 重发”。 */
    void useToken(String value) {
        token = value;
    }

    private static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 5) {
            System.err.println("用法：java ImspClient <平台地址> <appId> <appSecret> <服务> <记录文件.json> [初始令牌]");
            System.exit(2);
        }
        ImspClient client = new ImspClient(args[0], args[1], args[2]);
        if (args.length > 5) {
            client.useToken(args[5]);
        }
        byte[] body = Files.readAllBytes(Path.of(args[4]));
        String receipt = client.upload(args[3], body);
        System.out.println(receipt);
        // 回执 data.results 逐条给出 msgCode（200 新增、201 覆盖）与全部问题；此处只看整体 code
        System.exit(codeOf(receipt) == 200 ? 0 : 1);
    }
}
